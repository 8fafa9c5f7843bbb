// The open workspace, as the Dashboard query returned it (spend limits update its workbooks),
// shared by the page's parts. Both are null while nobody is logged in.
export const session = {
  workspace: null,
  viewer: null,
};

// Whether the open session's key is an admin's: only then are the controls that change
// settings shown (the API refuses them to a member key anyway).
export function isAdmin() {
  return session.viewer?.role === "ADMIN";
}
