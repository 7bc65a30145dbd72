"""The console's browser plumbing: sessions, CSRF, static assets and page rendering."""
