# creditgate sidecar image: build stage compiles TypeScript; the runtime stage
# has production dependencies (and the ioredis/express peers) only and runs as
# a non-root user. Node 24 LTS, pinned by tag; pin the digest in your registry
# mirror (`node:24.21.0-slim@sha256:…`) to make builds reproducible.
FROM node:24.21.0-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24.21.0-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# ioredis and express are peer dependencies of the package (an app brings its
# own); the sidecar image brings them itself, at the versions the lockfile pins.
RUN node -e "const fs=require('fs');const p=require('./package.json');const l=require('./package-lock.json');for(const n of Object.keys(p.peerDependencies))p.dependencies[n]=l.packages['node_modules/'+n].version;delete p.devDependencies;fs.writeFileSync('package.json',JSON.stringify(p,null,2))" \
  && npm install --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY lua ./lua
COPY config ./config
RUN ln -s /app/dist/cli.js /usr/local/bin/creditgate && chmod +x /app/dist/cli.js
USER node
ENV PORT=8080 ADMIN_PORT=9090 CREDITGATE_CONFIG=/app/config/credits.example.yaml
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.ADMIN_PORT||9090)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["creditgate", "serve"]
