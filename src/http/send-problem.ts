// Writes a problem+json response on any Node response (Express's included:
// written raw so no charset parameter is appended to the media type).

import type { ServerResponse } from 'node:http';
import { problemBody, problemHeaders, type Problem } from './problem-details.js';

export function sendProblem(res: ServerResponse, p: Problem, baseUrl: string, instance?: string): void {
  const body = JSON.stringify(problemBody(p, baseUrl, instance));
  res.writeHead(p.status, problemHeaders(p, body));
  res.end(body);
}
