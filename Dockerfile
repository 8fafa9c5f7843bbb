# Tally's API image. GraphiQL's npm packages are installed in a build stage, never fetched at
# run time.
FROM node:20-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
WORKDIR /srv/tally
COPY pyproject.toml constraints.txt README.md ./
COPY app app
COPY graphql_schema graphql_schema
COPY tally tally
COPY jobs jobs
RUN pip install --no-cache-dir -c constraints.txt -e .
COPY --from=web /src/web/node_modules web/node_modules
COPY web/dashboard web/dashboard
ENV TALLY_WEB_DIR=/srv/tally/web
EXPOSE 8000
CMD ["tally", "serve", "--host", "0.0.0.0", "--port", "8000"]
