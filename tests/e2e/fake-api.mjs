/**
 * A fake model API on 127.0.0.1 (random port) for driving the real host CLIs offline. It speaks, streamed (SSE):
 *
 *   POST /v1/messages          the Anthropic Messages API (Claude Code)
 *   POST /v1/responses         the OpenAI Responses API (Codex)
 *   POST /v1/chat/completions  OpenAI Chat Completions (Cline)
 *
 * Each request is turned into one neutral conversation ({ tools, items }) and handed to the `model` function,
 * which answers with text or tool calls; the answer is encoded back in the request's wire format. Every request
 * is recorded (path and parsed body), so a test can read exactly what the model was shown.
 *
 * Neutral items: { kind: 'user', text } | { kind: 'assistant', text } | { kind: 'call', id, name, args }
 *                | { kind: 'result', id, text, isError }
 * A tool: { name, description, schema } (for Codex MCP tools, name is namespace + name, e.g. mcp__loki__loki_start).
 */
import http from 'node:http';

/** @typedef {{ text?: string, calls?: { name: string, args: Record<string, unknown> }[] }} Answer */

/**
 * @param {{ model: (conv: { format: string, tools: any[], items: any[], main: boolean }) => Answer }} opts
 */
export async function startFakeApi(opts) {
  const requests = [];
  let seq = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      let json = {};
      try {
        json = body ? JSON.parse(body) : {};
      } catch {
        /* not JSON: recorded as is */
      }
      if (/^https?:\/\//.test(req.url ?? '')) {
        egress.push(`${req.method} ${req.url}`);
        return sendJson(res, { error: 'fake api: no network' }, 403);
      }
      const url = (req.url ?? '').split('?')[0];
      const record = { path: url, method: req.method, at: Date.now(), body: json, answer: undefined };
      requests.push(record);
      try {
        if (req.method === 'GET') return sendJson(res, url.endsWith('/models') ? { data: [], object: 'list' } : {});
        if (url.endsWith('/messages/count_tokens')) return sendJson(res, { input_tokens: 1000 });
        let conv, encode;
        if (url.endsWith('/messages')) [conv, encode] = [fromAnthropic(json), toAnthropic];
        else if (url.endsWith('/responses')) [conv, encode] = [fromResponses(json), toResponses];
        else if (url.endsWith('/chat/completions')) [conv, encode] = [fromChat(json), toChat];
        else return sendJson(res, { error: { message: `fake api: no route ${url}` } }, 404);
        record.conv = conv;
        const answer = opts.model(conv);
        record.answer = answer;
        encode(res, answer, json, `${++seq}`);
      } catch (err) {
        record.error = String(err?.stack ?? err);
        sendJson(res, { error: { type: 'api_error', message: `fake api: ${err?.message ?? err}` } }, 500);
      }
    });
  });
  // A host that drops its connection mid-answer is no error of ours.
  server.on('connection', (socket) => socket.on('error', () => {}));
  // Also the hosts' HTTP(S) proxy: anything a host tries to send off the machine is recorded here and refused.
  const egress = [];
  server.on('connect', (req, socket) => {
    egress.push(`CONNECT ${req.url}`);
    socket.on('error', () => {});
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    egress,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve(undefined));
      }),
  };
}

function sendJson(res, obj, status = 200) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(obj));
}

function sse(res) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  return (event, data) => res.write(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`);
}

const asText = (v) =>
  typeof v === 'string'
    ? v
    : Array.isArray(v)
      ? v
          .map((p) =>
            typeof p === 'string' ? p : (p?.text ?? (p?.type === 'tool_reference' ? '' : JSON.stringify(p))),
          )
          .join('\n')
      : v == null
        ? ''
        : JSON.stringify(v);

const parseArgs = (s) => {
  if (s && typeof s === 'object') return s;
  try {
    return JSON.parse(s || '{}');
  } catch {
    return { _raw: s };
  }
};

// ------------------------------------------------------------------------------------------------------------
// Anthropic Messages (Claude Code)

function fromAnthropic(body) {
  const tools = (body.tools ?? []).map((t) => ({ name: t.name, description: t.description, schema: t.input_schema }));
  const items = [];
  for (const m of body.messages ?? []) {
    const parts = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : (m.content ?? []);
    for (const p of parts) {
      if (p.type === 'text') items.push({ kind: m.role === 'assistant' ? 'assistant' : 'user', text: p.text });
      else if (p.type === 'tool_use') items.push({ kind: 'call', id: p.id, name: p.name, args: p.input ?? {} });
      else if (p.type === 'tool_result')
        items.push({
          kind: 'result',
          id: p.tool_use_id,
          text: asText(p.content),
          isError: !!p.is_error,
          raw: p.content,
        });
    }
  }
  const system = asText(body.system);
  return { format: 'anthropic', tools, items, system, main: tools.length > 0 };
}

function toAnthropic(res, answer, body, seq) {
  const usage = { input_tokens: 100, output_tokens: 10, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  const blocks = [];
  if (answer.text) blocks.push({ type: 'text', text: answer.text });
  for (const [i, c] of (answer.calls ?? []).entries())
    blocks.push({ type: 'tool_use', id: `toolu_${seq}_${i}`, name: c.name, input: c.args });
  const stop = answer.calls?.length ? 'tool_use' : 'end_turn';
  const message = { id: `msg_${seq}`, type: 'message', role: 'assistant', model: body.model, content: [] };
  if (!body.stream) return sendJson(res, { ...message, content: blocks, stop_reason: stop, usage });
  const send = sse(res);
  send('message_start', { type: 'message_start', message: { ...message, stop_reason: null, usage } });
  blocks.forEach((b, index) => {
    if (b.type === 'text') {
      send('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
      send('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: b.text } });
    } else {
      send('content_block_start', {
        type: 'content_block_start',
        index,
        content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} },
      });
      send('content_block_delta', {
        type: 'content_block_delta',
        index,
        delta: { type: 'input_json_delta', partial_json: JSON.stringify(b.input) },
      });
    }
    send('content_block_stop', { type: 'content_block_stop', index });
  });
  send('message_delta', { type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage });
  send('message_stop', { type: 'message_stop' });
  res.end();
}

// ------------------------------------------------------------------------------------------------------------
// OpenAI Responses (Codex)

function fromResponses(body) {
  const tools = [];
  const addTool = (t, ns) => {
    if (t.type === 'namespace' || Array.isArray(t.tools)) {
      for (const inner of t.tools ?? []) addTool(inner, t.name);
      return;
    }
    const name = t.name ?? t.function?.name ?? t.type;
    tools.push({
      name: ns ? `${ns}${ns.endsWith('__') ? '' : '__'}${name}` : name,
      bare: name,
      namespace: ns,
      description: t.description ?? t.function?.description,
      schema: t.parameters ?? t.function?.parameters ?? t.format,
      type: t.type,
    });
  };
  for (const t of body.tools ?? []) addTool(t);
  const items = [];
  for (const it of body.input ?? []) {
    if (it.type === 'message' || (!it.type && it.role))
      items.push({ kind: it.role === 'assistant' ? 'assistant' : 'user', text: asText(it.content), role: it.role });
    else if (it.type === 'function_call' || it.type === 'custom_tool_call' || it.type === 'local_shell_call') {
      const ns = it.namespace;
      const name = ns ? `${ns}${ns.endsWith('__') ? '' : '__'}${it.name}` : it.name;
      items.push({ kind: 'call', id: it.call_id, name, args: parseArgs(it.arguments ?? it.input) });
    } else if (it.type === 'function_call_output' || it.type === 'custom_tool_call_output') {
      const out = it.output;
      items.push({
        kind: 'result',
        id: it.call_id,
        text: asText(typeof out === 'object' && !Array.isArray(out) ? (out.content ?? out) : out),
        isError: false,
        raw: out,
      });
    }
  }
  return { format: 'responses', tools, items, system: body.instructions ?? '', main: tools.length > 0 };
}

function toResponses(res, answer, body, seq) {
  const send = sse(res);
  const id = `resp_${seq}`;
  send('response.created', { type: 'response.created', response: { id, status: 'in_progress', output: [] } });
  const output = [];
  if (answer.text) {
    output.push({
      type: 'message',
      id: `msg_${seq}`,
      role: 'assistant',
      status: 'completed',
      content: [{ type: 'output_text', text: answer.text, annotations: [] }],
    });
  }
  const byName = new Map();
  for (const t of fromResponses(body).tools) byName.set(t.name, t);
  for (const [i, c] of (answer.calls ?? []).entries()) {
    const t = byName.get(c.name);
    output.push({
      type: 'function_call',
      id: `fc_${seq}_${i}`,
      call_id: `call_${seq}_${i}`,
      ...(t?.namespace ? { namespace: t.namespace } : {}),
      name: t?.bare ?? c.name,
      arguments: JSON.stringify(c.args),
      status: 'completed',
    });
  }
  output.forEach((item, output_index) => {
    send('response.output_item.added', { type: 'response.output_item.added', output_index, item });
    if (item.type === 'message')
      send('response.output_text.delta', {
        type: 'response.output_text.delta',
        item_id: item.id,
        output_index,
        content_index: 0,
        delta: item.content[0].text,
      });
    send('response.output_item.done', { type: 'response.output_item.done', output_index, item });
  });
  send('response.completed', {
    type: 'response.completed',
    response: {
      id,
      status: 'completed',
      output,
      usage: {
        input_tokens: 100,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: 10,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 110,
      },
    },
  });
  res.end();
}

// ------------------------------------------------------------------------------------------------------------
// OpenAI Chat Completions (Cline)

function fromChat(body) {
  const tools = (body.tools ?? []).map((t) => ({
    name: t.function?.name ?? t.name,
    description: t.function?.description,
    schema: t.function?.parameters,
  }));
  const items = [];
  let system = '';
  for (const m of body.messages ?? []) {
    if (m.role === 'system') system += asText(m.content);
    else if (m.role === 'tool')
      items.push({ kind: 'result', id: m.tool_call_id, text: asText(m.content), isError: false, raw: m.content });
    else {
      const text = asText(m.content);
      if (text) items.push({ kind: m.role === 'assistant' ? 'assistant' : 'user', text });
      for (const tc of m.tool_calls ?? [])
        items.push({ kind: 'call', id: tc.id, name: tc.function?.name, args: parseArgs(tc.function?.arguments) });
    }
  }
  return { format: 'chat', tools, items, system, main: tools.length > 0 };
}

function toChat(res, answer, body, seq) {
  const base = { id: `chatcmpl-${seq}`, object: 'chat.completion.chunk', created: 0, model: body.model ?? 'fake' };
  const usage = { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110 };
  const calls = (answer.calls ?? []).map((c, i) => ({
    index: i,
    id: `call_${seq}_${i}`,
    type: 'function',
    function: { name: c.name, arguments: JSON.stringify(c.args) },
  }));
  if (!body.stream) {
    return sendJson(res, {
      ...base,
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: answer.text ?? null, ...(calls.length ? { tool_calls: calls } : {}) },
          finish_reason: calls.length ? 'tool_calls' : 'stop',
        },
      ],
      usage,
    });
  }
  const send = sse(res);
  send(undefined, { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
  if (answer.text)
    send(undefined, { ...base, choices: [{ index: 0, delta: { content: answer.text }, finish_reason: null }] });
  if (calls.length)
    send(undefined, { ...base, choices: [{ index: 0, delta: { tool_calls: calls }, finish_reason: null }] });
  send(undefined, { ...base, choices: [{ index: 0, delta: {}, finish_reason: calls.length ? 'tool_calls' : 'stop' }] });
  if (body.stream_options?.include_usage) send(undefined, { ...base, choices: [], usage });
  res.write('data: [DONE]\n\n');
  res.end();
}
