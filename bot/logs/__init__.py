"""Process-wide logging: set-up for the command line, and the redaction every emitted line goes through."""
