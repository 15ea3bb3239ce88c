# Production image: gunicorn for web, the same image runs the Celery worker and beat.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BACKUPSVC_ENV=production
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
# native/winzip-kdf: the C key derivation (requirements.txt), built here and its compiler removed.
COPY native/ native/
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev libssl-dev \
    && pip install --no-cache-dir -r requirements.txt \
    && apt-get purge -y gcc libc6-dev libssl-dev && rm -rf /var/lib/apt/lists/*
COPY . .
# collectstatic needs settings that import; the real secrets come at run time.
RUN SECRET_KEY=build BACKUP_KEYS=$(python -c "from cryptography.fernet import Fernet;print(Fernet.generate_key().decode())") \
    RESTORE_CODE_KEY=build ALLOWED_HOSTS=build python manage.py collectstatic --no-input
RUN useradd --system --uid 1000 app && mkdir -p /app/var && chown app /app/var
USER app
EXPOSE 8000
CMD ["gunicorn", "backupsvc.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4", "--access-logfile", "-"]
