# One image for both programs: the console (`cesi-like serve`, the default command) and the
# agent (`cesi-agentd`). docker-compose.yml runs it both ways.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user owns everything the programs write.
RUN useradd --system --user-group --uid 1000 --home-dir /var/lib/cesi-like --create-home cesi \
    && install -d -o cesi -g cesi /var/log/cesi-agent /run/cesi-agent

COPY setup.cfg pyproject.toml README.md /src/
COPY cesi_like /src/cesi_like
RUN pip install '/src[postgres]' && rm -rf /src

USER cesi
WORKDIR /var/lib/cesi-like
EXPOSE 5000
CMD ["cesi-like", "serve", "--bind", "0.0.0.0:5000"]
