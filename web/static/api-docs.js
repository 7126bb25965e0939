// The API reference: Swagger UI over /api/openapi.json. "Authorize" takes an API token
// (journey tokens create); "Try it out" sends real requests with it.
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger");
  window.SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger",
    deepLinking: true,
    persistAuthorization: false,
    displayRequestDuration: true,
  });
});
