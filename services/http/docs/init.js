// Loaded as a file, not inline: the API's Content-Security-Policy allows scripts from 'self' only.
window.ui = SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  withCredentials: true,
});
