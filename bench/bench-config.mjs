// The credits.yaml every bench tool runs creditgate with: one pool, a plan
// too big to empty (the charged rows), a one-credit plan (the refusals row),
// a charged route and an event-stream route.

export const BENCH_CONFIG = `version: 1
defaultPlan: big
creditTypes:
  ai_tasks: { name: AI Task Credits }
plans:
  big: { ai_tasks: 1000000000 }
  spent: { ai_tasks: 1 }
cache: { accountTtlMs: 600000 }
routes:
  - name: ai
    method: POST
    path: /v1/ai/custom
    charge: { ai_tasks: { header: x-task-count } }
  - name: stream
    method: POST
    path: /v1/ai/stream
    charge: { ai_tasks: { header: x-task-count } }
`;
