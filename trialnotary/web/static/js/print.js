// The printable receipt's Print button (no inline handlers: the CSP forbids them).
const button = document.getElementById("print-button");
if (button) button.addEventListener("click", () => window.print());
