// End-to-end check of `aether serve` with the official OpenAI Node client. Prints one JSON object with what it saw;
// the Java test (OpenAiNodeClientTest) asserts on it. Env: AETHER_BASE_URL, AETHER_API_KEY, AETHER_MODEL.
import OpenAI from 'openai';

const baseURL = process.env.AETHER_BASE_URL;
const model = process.env.AETHER_MODEL;
const client = new OpenAI({ baseURL, apiKey: process.env.AETHER_API_KEY, maxRetries: 0, timeout: 60_000 });
const out = {};

out.models = (await client.models.list()).data.map((m) => m.id);

const messages = [{ role: 'user', content: 'Tell me a story about a cat' }];
const chat = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
out.chat = { content: chat.choices[0].message.content, finish: chat.choices[0].finish_reason, usage: chat.usage };

const stream = await client.chat.completions.create({
  model, messages, max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true },
});
let streamed = '';
let streamUsage = null;
let streamFinish = null;
let chunks = 0;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) streamUsage = chunk.usage;
  const choice = chunk.choices[0];
  if (choice) {
    streamed += choice.delta?.content ?? '';
    if (choice.finish_reason) streamFinish = choice.finish_reason;
  }
}
out.chatStream = { content: streamed, finish: streamFinish, usage: streamUsage, chunks };

const completion = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 20, temperature: 0 });
out.completion = { text: completion.choices[0].text, usage: completion.usage };

const cstream = await client.completions.create({
  model, prompt: 'Once upon a time', max_tokens: 20, temperature: 0, stream: true,
});
let ctext = '';
for await (const chunk of cstream) ctext += chunk.choices[0]?.text ?? '';
out.completionStream = { text: ctext };

const json = await client.chat.completions.create({
  model, messages: [{ role: 'user', content: 'A JSON object about a dog' }], max_tokens: 60, temperature: 0.8, seed: 7,
  response_format: { type: 'json_object' },
});
out.json = { content: json.choices[0].message.content, finish: json.choices[0].finish_reason };
try {
  out.json.parsedType = Array.isArray(JSON.parse(out.json.content)) ? 'array' : typeof JSON.parse(out.json.content);
} catch (e) {
  out.json.parsedType = 'unparsable: ' + e.message;
}

// embeddings: the client asks for base64 by default and decodes it into float32 values itself
const texts = ['Once upon a time', 'The cat sat on the mat'];
const emb = await client.embeddings.create({ model, input: texts });
const embFloat = await client.embeddings.create({ model, input: texts[0], encoding_format: 'float' });
out.embeddings = {
  object: emb.object,
  indexes: emb.data.map((d) => d.index),
  dims: emb.data.map((d) => d.embedding.length),
  norms: emb.data.map((d) => Math.hypot(...d.embedding)),
  first: emb.data[0].embedding,
  floatFirst: embFloat.data[0].embedding,
  sameAsFloat: emb.data[0].embedding.every((v, i) => Math.fround(embFloat.data[0].embedding[i]) === v),
  usage: emb.usage,
  model: emb.model,
};

const schema = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 20 },
    age: { type: 'integer', minimum: 1, maximum: 15 },
    kind: { enum: ['cat', 'dog', 'bird'] },
    friends: { type: 'array', items: { type: 'string', maxLength: 10 }, maxItems: 2 },
  },
  required: ['name', 'age', 'kind', 'friends'],
  additionalProperties: false,
};
const structured = await client.chat.completions.create({
  model, messages: [{ role: 'user', content: 'Describe a pet' }], max_tokens: 120, temperature: 1.0, seed: 11, n: 2,
  response_format: { type: 'json_schema', json_schema: { name: 'pet', strict: true, schema } },
});
out.jsonSchema = {
  schema,
  choices: structured.choices.map((c) => ({ index: c.index, content: c.message.content, finish: c.finish_reason })),
  usage: structured.usage,
};

async function status(fn) {
  try {
    await fn();
    return 200;
  } catch (e) {
    return e.status ?? String(e);
  }
}
const wrongKey = new OpenAI({ baseURL, apiKey: 'wrong-key', maxRetries: 0 });
out.wrongKeyStatus = await status(() => wrongKey.models.list());
out.wrongKeyChatStatus = await status(() => wrongKey.chat.completions.create({ model, messages, max_tokens: 2 }));
out.badRequestStatus = await status(() => client.chat.completions.create({ model, messages, temperature: 5 }));
out.unknownModelStatus = await status(() => client.chat.completions.create({ model: 'nope', messages }));
out.emptyEmbeddingStatus = await status(() => client.embeddings.create({ model, input: [] }));
out.wrongKeyEmbeddingStatus = await status(() => wrongKey.embeddings.create({ model, input: 'x' }));

console.log(JSON.stringify(out));
