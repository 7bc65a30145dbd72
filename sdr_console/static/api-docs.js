// /api/docs: starts Swagger UI (served from our own origin) over the URL the page names. No inline script: CSP.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") {
    return; // the page says what is missing
  }
  window.SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    // Same-origin calls only; a console session's cookie goes along, a token is entered under "Authorize".
    withCredentials: true,
  });
});
