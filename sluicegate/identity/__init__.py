"""Who is calling: virtual keys -> principal, plus the identity envelope from headers."""
