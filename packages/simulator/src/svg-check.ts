/**
 * Test support: a strict check that a text is one well-formed XML element tree (tags nest and
 * close, attributes are quoted and unique, `&` starts a known entity, nothing after the root),
 * returning the root element's name and attributes.
 */
export function parseXmlRoot(text: string): { name: string; attributes: Record<string, string> } {
  const entity = /^&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/;
  const stack: string[] = [];
  let root: { name: string; attributes: Record<string, string> } | null = null;
  let i = 0;
  let closedRoot = false;
  const fail = (why: string): never => {
    throw new Error(`not well-formed XML at ${i}: ${why}`);
  };
  if (text.startsWith('<?xml')) i = text.indexOf('?>') + 2;
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const chunk = text.slice(i, lt === -1 ? text.length : lt);
    if (chunk.trim() !== '' && (stack.length === 0 || closedRoot)) fail('text outside the root element');
    for (let k = chunk.indexOf('&'); k >= 0; k = chunk.indexOf('&', k + 1))
      if (!entity.test(chunk.slice(k))) fail('bare &');
    if (lt === -1) break;
    i = lt;
    const gt = text.indexOf('>', i);
    if (gt === -1) fail('unclosed tag');
    const tag = text.slice(i + 1, gt);
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      if (stack.pop() !== name) fail(`</${name}> closes nothing open`);
      if (stack.length === 0) closedRoot = true;
    } else {
      if (closedRoot) fail('a second root element');
      const selfClosing = tag.endsWith('/');
      const body = selfClosing ? tag.slice(0, -1) : tag;
      const m = /^([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*="[^"<]*")*)\s*$/.exec(body);
      if (!m) fail(`malformed tag <${tag.slice(0, 40)}>`);
      const attributes: Record<string, string> = {};
      for (const a of (m?.[2] ?? '').matchAll(/([A-Za-z_][\w:.-]*)="([^"]*)"/g)) {
        if ((a[1] as string) in attributes) fail(`attribute ${a[1]} twice`);
        for (let k = (a[2] as string).indexOf('&'); k >= 0; k = (a[2] as string).indexOf('&', k + 1))
          if (!entity.test((a[2] as string).slice(k))) fail('bare & in an attribute');
        attributes[a[1] as string] = a[2] as string;
      }
      root ??= { name: m?.[1] as string, attributes };
      if (!selfClosing) stack.push(m?.[1] as string);
      else if (stack.length === 0) closedRoot = true;
    }
    i = gt + 1;
  }
  if (stack.length > 0) fail(`<${stack.at(-1)}> is not closed`);
  if (!root) fail('no element');
  return root as { name: string; attributes: Record<string, string> };
}
