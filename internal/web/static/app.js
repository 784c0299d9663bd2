// proxyline console: sortable tables. Each header of a table.sortable becomes a button that sorts
// the rows of this page by that column (numbers by their data-sort value, text by its content),
// and says so with aria-sort. The filters are a plain form: the server filters.
"use strict";

function cellValue(row, col, numeric) {
  const cell = row.cells[col];
  if (!cell) return numeric ? NaN : "";
  const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
  return numeric ? parseFloat(raw) : raw.toLowerCase();
}

function sortBy(table, th, col) {
  const numeric = th.dataset.type === "number";
  const ascending = th.getAttribute("aria-sort") !== "ascending";
  for (const other of table.tHead.rows[0].cells) other.removeAttribute("aria-sort");
  th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows).filter((r) => r.cells.length > 1);
  rows.sort((a, b) => {
    const x = cellValue(a, col, numeric), y = cellValue(b, col, numeric);
    let c;
    if (numeric) c = (isNaN(x) ? Infinity : x) - (isNaN(y) ? Infinity : y);
    else c = x < y ? -1 : x > y ? 1 : 0;
    return ascending ? c : -c;
  });
  for (const r of rows) body.appendChild(r);
}

function makeSortable(table) {
  if (!table.tHead || !table.tBodies.length) return;
  Array.from(table.tHead.rows[0].cells).forEach((th, col) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = th.textContent;
    button.title = "Sort this page by " + th.textContent;
    th.textContent = "";
    th.appendChild(button);
    button.addEventListener("click", () => sortBy(table, th, col));
  });
  table.dataset.sortable = "ready";
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable").forEach(makeSortable);
});
