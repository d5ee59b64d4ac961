"""Content-addressed media: upload, validation, storage by sha256, HTTP serving."""
