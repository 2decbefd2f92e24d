// A stand-in for hubspot.fetch (a real one needs HubSpot's extension worker): answers from a
// script and records every call, like HubSpot's proxy would receive them.
export function fakeFetch(...answers) {
  const calls = [];
  const fetcher = async (url, options) => {
    calls.push({ url, options });
    const answer = answers.length > 1 ? answers.shift() : answers[0];
    if (answer instanceof Error) throw answer;
    const { status = 200, body } = answer;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    return new Response(text, { status, headers: { 'Content-Type': 'application/json' } });
  };
  fetcher.calls = calls;
  return fetcher;
}
