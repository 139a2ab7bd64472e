"""Keys: the KMS seam, per-tenant data-encryption keys and field/file encryption of PII."""
