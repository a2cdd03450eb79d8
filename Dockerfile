# One image for every worker role; a Deployment picks the role by its command (workers/<role>.ts).
# CPU build:  docker build -t rememr1-worker .
# GPU build (CUDA 12 execution provider; onnxruntime-node fetches its CUDA libraries at install, so the build
# needs network access and a CUDA base image with Node >= 20.19 on it):
#   docker build --build-arg BASE_IMAGE=<CUDA 12 runtime image with Node and a "node" user, uid 1000> \
#     --build-arg ORT_INSTALL=true -t rememr1-worker:gpu .
ARG BASE_IMAGE=node:20-bookworm-slim
FROM ${BASE_IMAGE}

WORKDIR /app
ARG ORT_INSTALL=skip
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=${ORT_INSTALL} \
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true

COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev && npm cache clean --force

COPY tsconfig.json temporal.config.ts ./
COPY activities ./activities
COPY cli ./cli
COPY examples ./examples
COPY infra ./infra
COPY lib ./lib
COPY workers ./workers
COPY workflows ./workflows
# The bundled models (a few MB); mount or download a real model folder and point REMEMR1_MODEL at it.
COPY models ./models

# Caches (downloaded policy versions, tsx's compile cache) go to writable volumes, not the image.
ENV REMEMR1_LOCAL_DIR=/var/cache/rememr1
RUN mkdir -p /var/cache/rememr1 && chown node:node /var/cache/rememr1
USER node

# 8080: /healthz and /readyz (REMEMR1_HEALTH_BIND_ADDRESS); 9464: Prometheus /metrics (REMEMR1_METRICS_BIND_ADDRESS).
EXPOSE 8080 9464
# Node runs as PID 1: Temporal's runtime turns SIGTERM into a graceful worker shutdown.
CMD ["node", "--require", "tsx/cjs", "workers/all-in-one.ts"]
