// Python syntax colouring for the approver page: a small tokenizer, no dependencies. It returns
// tokens as data ([class, text] pairs per line); the page renders them with textContent, never
// innerHTML, because the code comes from an LLM.

const KEYWORDS = new Set(
  (
    'False None True and as assert async await break class continue def del elif else except finally for from ' +
    'global if import in is lambda nonlocal not or pass raise return try while with yield match case'
  ).split(' '),
);
const BUILTINS = new Set(
  (
    'abs all any bool bytes callable chr dict dir divmod enumerate eval exec filter float format frozenset getattr ' +
    'globals hasattr hash hex id input int isinstance issubclass iter len list locals map max min next object open ' +
    'ord pow print range repr reversed round set setattr slice sorted str sum super tuple type vars zip __import__ ' +
    'compile breakpoint memoryview bytearray complex delattr'
  ).split(' '),
);

// One regular expression, tried at each position: the first group that matches names the token.
const TOKEN = new RegExp(
  [
    String.raw`(?<com>#[^\r\n]*)`,
    // Strings, with up to two prefix letters; triple-quoted ones may span lines (unterminated: to the end).
    String.raw`(?<str>(?:[rRbBuUfF]{1,2})?(?:'''[\s\S]*?(?:'''|$(?![\s\S]))|"""[\s\S]*?(?:"""|$(?![\s\S]))|'(?:\\[\s\S]|[^'\\\r\n])*'?|"(?:\\[\s\S]|[^"\\\r\n])*"?))`,
    String.raw`(?<num>\b(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?[jJ]?)\b)`,
    String.raw`(?<name>[A-Za-z_\u00c0-\uffff][\w\u00c0-\uffff]*)`,
    String.raw`(?<nl>\r\n|\r|\n)`,
    String.raw`(?<other>[^\sA-Za-z_#'"\d\u00c0-\uffff]+|\s+|.)`,
  ].join('|'),
  'gy',
);

/**
 * Splits Python source into lines of [class, text] tokens. Classes: `kw` (keyword), `str`, `com`
 * (comment), `num`, `bi` (builtin), `def` (the name a def/class introduces), `call` (a name called),
 * `` (anything else). Line breaks split tokens (a string over three lines is three tokens), so
 * `lines.length` equals the number of source lines as CPython counts them (\n, \r\n, \r).
 */
export function highlightPython(code) {
  const lines = [[]];
  let previousName = '';
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < code.length) {
    const start = TOKEN.lastIndex;
    const m = TOKEN.exec(code);
    if (!m || TOKEN.lastIndex === start) {
      // Cannot happen (the last alternative takes any character); never loop forever on a surprise.
      lines.at(-1).push(['', code.slice(start)]);
      break;
    }
    const g = m.groups;
    if (g.nl !== undefined) {
      lines.push([]);
      continue;
    }
    let cls = '';
    if (g.com !== undefined) cls = 'com';
    else if (g.str !== undefined) cls = 'str';
    else if (g.num !== undefined) cls = 'num';
    else if (g.name !== undefined) {
      const name = g.name;
      if (KEYWORDS.has(name)) cls = 'kw';
      else if (previousName === 'def' || previousName === 'class') cls = 'def';
      else if (/^\s*\(/.test(code.slice(TOKEN.lastIndex, TOKEN.lastIndex + 40)))
        cls = BUILTINS.has(name) ? 'bi' : 'call';
      else if (BUILTINS.has(name)) cls = 'bi';
      previousName = name;
    }
    if (g.other !== undefined && /\S/.test(m[0])) previousName = '';
    // A token over several lines (a triple-quoted string) becomes one piece per line.
    const pieces = m[0].split(/\r\n|\r|\n/);
    pieces.forEach((piece, i) => {
      if (i > 0) lines.push([]);
      if (piece) lines.at(-1).push([cls, piece]);
    });
  }
  // CPython does not count a final line break as the start of another line.
  if (lines.length > 1 && lines.at(-1).length === 0 && /(\r\n|\r|\n)$/.test(code)) lines.pop();
  return lines;
}
