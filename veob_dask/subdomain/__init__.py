"""subdomain."""
