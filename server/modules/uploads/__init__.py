"""Uploads: resumable (tus) and multipart uploads, scanning, parsing, mapping, validation."""
