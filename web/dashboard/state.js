// The open workspace, as the Dashboard query returned it (spend limits update its workbooks),
// shared by the page's parts. Both are null while nobody is logged in.
export const session = {
  workspace: null,
  viewer: null,
};
