// "Download CSV": the breakdown as chosen, from the same endpoint a script would call.

import { fetchUsageCsv } from "./api.js";
import { $, el, showMessage } from "./dom.js";
import { usageVariables } from "./usage.js";

const LINK_LIFETIME_MS = 10_000; // long enough for the browser to start saving the file

export function wireCsv() {
  $("download-csv").addEventListener("click", onDownloadCsv);
}

// The server's name for the file (Content-Disposition), else one made of the chosen days.
export function csvFilename(contentDisposition, fromDay, toDay) {
  const match = /filename="?([^";]+)"?/.exec(contentDisposition ?? "");
  if (match) return match[1];
  return `tally-usage-${fromDay}-to-${toDay}.csv`;
}

function csvParams() {
  const { from, to, groupBy, workbookId } = usageVariables();
  const params = new URLSearchParams({ from, to, groupBy: groupBy.join(",") });
  if (workbookId) params.set("workbookId", workbookId);
  return params;
}

async function onDownloadCsv() {
  const button = $("download-csv");
  const params = csvParams();
  showMessage($("csv-error"), "");
  button.disabled = true;
  button.textContent = "Preparing…";
  try {
    const response = await fetchUsageCsv(params);
    const blob = await response.blob();
    const header = response.headers.get("Content-Disposition");
    saveFile(blob, csvFilename(header, $("range-from").value, $("range-to").value));
  } catch (error) {
    showMessage($("csv-error"), `The CSV could not be downloaded: ${error.message}`);
  } finally {
    button.disabled = false;
    button.textContent = "Download CSV";
  }
}

// The fetched file is saved through a temporary link to a blob URL.
function saveFile(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), LINK_LIFETIME_MS);
}
