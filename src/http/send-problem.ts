// Writes a problem+json response on any Node response (Express's included:
// written raw so no charset parameter is appended to the media type), or the
// OpenAI-compatible shape when the route's problems.style asks for it.

import type { ServerResponse } from 'node:http';
import { openAiErrorBody, openAiErrorHeaders, type ProblemStyle } from './openai-error.js';
import { problemBody, problemHeaders, type Problem } from './problem-details.js';

export function sendProblem(res: ServerResponse, p: Problem, baseUrl: string, instance?: string, style: ProblemStyle = 'problem+json'): void {
  const openAi = style === 'openai' ? openAiErrorBody(p) : undefined;
  if (openAi) {
    const body = JSON.stringify(openAi);
    res.writeHead(p.status, openAiErrorHeaders(p, body));
    res.end(body);
    return;
  }
  const body = JSON.stringify(problemBody(p, baseUrl, instance));
  res.writeHead(p.status, problemHeaders(p, body));
  res.end(body);
}
