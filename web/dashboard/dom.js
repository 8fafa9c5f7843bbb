// The few DOM helpers the page needs. Text always goes in as text, never as markup: names come
// from API clients (workbooks, tables).

export const $ = (id) => document.getElementById(id);

// el("td", { class: "num", onclick: f, dataset: { id } }, "text", child): a new element.
// Attributes that are null, undefined or false are left out; so are null children.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) {
      node.setAttribute(name, value);
    }
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export function setText(id, text) {
  $(id).textContent = text;
}

// A status or error line: shown with its text, hidden when there is none.
export function showMessage(node, text) {
  node.textContent = text ?? "";
  node.hidden = !text;
}

// A line saying how an action went: green when it worked, an alert when it did not.
export function showOutcome(node, text, isError) {
  node.classList.toggle("error", Boolean(isError));
  node.classList.toggle("ok", !isError);
  node.setAttribute("role", isError ? "alert" : "status");
  showMessage(node, text);
}
