"""The web: the application factory, the pages, the admin pages, the JSON API with its
OpenAPI document, and the documents they serve (PDF, CSV, zip). Views are thin: they call
the services of the notary and people packages."""
