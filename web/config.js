// For serving web/ by hand next to a local API on its default port. The local stack
// answers /config.js itself and Terraform writes this file to the website bucket,
// so neither uses this copy.
window.INFERENCE_CONFIG = {"apiBaseUrl": "http://127.0.0.1:8080"};
