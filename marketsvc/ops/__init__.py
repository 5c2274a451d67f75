"""Operations: logs, metrics, gunicorn settings."""
