import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  LinkFormatError,
  filterLinks,
  linkAttr,
  linkAttrs,
  linkMatchesQuery,
  parseLinkFormat,
  serializeLinkFormat,
  type Link,
  type LinkParam,
  type LinkParamValue,
} from '../../../src/coap/linkformat.js';

const q = (value: string): LinkParamValue => ({ kind: 'quoted', value });
const t = (value: string): LinkParamValue => ({ kind: 'ptoken', value });
const none: LinkParamValue = { kind: 'none' };
const link = (target: string, ...params: [string, LinkParamValue][]): Link => ({
  target,
  params: params.map(([name, value]) => ({ name, value })),
});

function throwsLinkFormat(fn: () => unknown, message: string, position: number | undefined): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof LinkFormatError, `expected LinkFormatError, got ${String(e)}`);
    assert.equal(e.message, message);
    assert.equal(e.position, position);
    return true;
  });
}

// RFC 6690 §5 shows the payloads with line breaks "for readability"; on the wire there are none.
const RFC6690_FULL =
  '</sensors>;ct=40;title="Sensor Index",' +
  '</sensors/temp>;rt="temperature-c";if="sensor",' +
  '</sensors/light>;rt="light-lux";if="sensor",' +
  '<http://www.example.com/sensors/t123>;anchor="/sensors/temp";rel="describedby",' +
  '</t>;anchor="/sensors/temp";rel="alternate"';

const RFC6690_FULL_LINKS: Link[] = [
  link('/sensors', ['ct', t('40')], ['title', q('Sensor Index')]),
  link('/sensors/temp', ['rt', q('temperature-c')], ['if', q('sensor')]),
  link('/sensors/light', ['rt', q('light-lux')], ['if', q('sensor')]),
  link('http://www.example.com/sensors/t123', ['anchor', q('/sensors/temp')], ['rel', q('describedby')]),
  link('/t', ['anchor', q('/sensors/temp')], ['rel', q('alternate')]),
];

void describe('RFC 6690 §5 examples', () => {
  void it('§5: GET /.well-known/core listing two sensors', () => {
    const text = '</sensors/temp>;if="sensor",</sensors/light>;if="sensor"';
    const links = parseLinkFormat(text);
    assert.deepEqual(links, [link('/sensors/temp', ['if', q('sensor')]), link('/sensors/light', ['if', q('sensor')])]);
    assert.equal(serializeLinkFormat(links), text);
  });

  void it('§5 + §4.1: GET /.well-known/core?if=sensor keeps both links', () => {
    const links = parseLinkFormat('</sensors/temp>;if="sensor",</sensors/light>;if="sensor"');
    assert.deepEqual(
      filterLinks(links, 'if=sensor').map((l) => l.target),
      ['/sensors/temp', '/sensors/light'],
    );
  });

  void it('§5: a resource collection </sensors>;ct=40 and its listing', () => {
    assert.deepEqual(parseLinkFormat('</sensors>;ct=40'), [link('/sensors', ['ct', t('40')])]);
    assert.deepEqual(parseLinkFormat('</sensors/temp>;rt="temperature-c";if="sensor",</sensors/light>;rt="light-lux";if="sensor"'), [
      link('/sensors/temp', ['rt', q('temperature-c')], ['if', q('sensor')]),
      link('/sensors/light', ['rt', q('light-lux')], ['if', q('sensor')]),
    ]);
  });

  void it('§5: title, anchor and rel with an absolute target URI', () => {
    const links = parseLinkFormat(RFC6690_FULL);
    assert.deepEqual(links, RFC6690_FULL_LINKS);
    assert.equal(serializeLinkFormat(links), RFC6690_FULL);
    assert.equal(linkAttr(links[0]!, 'title'), 'Sensor Index');
    assert.equal(linkAttr(links[3]!, 'anchor'), '/sensors/temp');
  });

  void it('§5: the same payload pretty-printed is rejected strictly and accepted with allowWhitespace', () => {
    const pretty = RFC6690_FULL.replace(/,/g, ',\n   ').replace(';rel="describedby"', '\n   ;rel="describedby"');
    throwsLinkFormat(
      () => parseLinkFormat(pretty),
      'at position 38: expected "<" to start a link-value, found "\\n" (whitespace is not allowed outside quoted-strings) (RFC 6690 §2 link-value)',
      38,
    );
    assert.deepEqual(parseLinkFormat(pretty, { allowWhitespace: true }), RFC6690_FULL_LINKS);
  });

  void it('§5 + §4.1: GET /.well-known/core?rt=light-lux', () => {
    const links = parseLinkFormat(RFC6690_FULL);
    assert.equal(serializeLinkFormat(filterLinks(links, 'rt=light-lux')), '</sensors/light>;rt="light-lux";if="sensor"');
  });
});

void describe('RFC 6690 §4.1 query filtering', () => {
  const links = parseLinkFormat(RFC6690_FULL + ',</obs>;obs;rt="a.b c.d";ct="0 41"');

  void it('href exact and trailing "*" prefix match', () => {
    assert.deepEqual(filterLinks(links, 'href=/sensors').map((l) => l.target), ['/sensors']);
    assert.deepEqual(
      filterLinks(links, 'href=/sensors*').map((l) => l.target),
      ['/sensors', '/sensors/temp', '/sensors/light'],
    );
    assert.deepEqual(filterLinks(links, 'href=/sens').map((l) => l.target), []);
  });

  void it('attribute prefix match with "*", and "*" alone for presence', () => {
    assert.deepEqual(filterLinks(links, 'rt=temp*').map((l) => l.target), ['/sensors/temp']);
    assert.deepEqual(filterLinks(links, 'rt=*').map((l) => l.target), ['/sensors/temp', '/sensors/light', '/obs']);
  });

  void it('space-separated values match any element', () => {
    assert.deepEqual(filterLinks(links, 'rt=c.d').map((l) => l.target), ['/obs']);
    assert.deepEqual(filterLinks(links, 'ct=41').map((l) => l.target), ['/obs']);
    assert.deepEqual(filterLinks(links, 'ct=40').map((l) => l.target), ['/sensors']);
    assert.deepEqual(filterLinks(links, 'rt=c').map((l) => l.target), []);
  });

  void it('several arguments must all match; none keeps everything; bare name tests presence', () => {
    assert.deepEqual(filterLinks(links, ['if=sensor', 'rt=light*']).map((l) => l.target), ['/sensors/light']);
    assert.equal(filterLinks(links, []).length, 6);
    assert.deepEqual(filterLinks(links, 'obs').map((l) => l.target), ['/obs']);
    assert.equal(linkMatchesQuery(links[0]!, 'title=Sensor Index'), true);
    assert.equal(linkMatchesQuery(links[0]!, 'title=Sensor index'), false);
  });
});

void describe('RFC 6690 §2 with LwM2M registration payloads (ptoken values, repeats, ext-values)', () => {
  const payload = '</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>,</9>;ver=1.1,</9/0>';

  void it('parses unquoted ct and ver tokens and keeps order', () => {
    const links = parseLinkFormat(payload);
    assert.deepEqual(links, [
      link('/', ['rt', q('oma.lwm2m')], ['ct', t('11543')]),
      link('/1/0'),
      link('/3/0'),
      link('/9', ['ver', t('1.1')]),
      link('/9/0'),
    ]);
    assert.equal(linkAttr(links[0]!, 'ct'), '11543');
    assert.equal(linkAttr(links[3]!, 'ver'), '1.1');
    assert.equal(linkAttr(links[1]!, 'ver'), undefined);
    assert.equal(serializeLinkFormat(links), payload);
  });

  void it('repeated attributes, valueless attributes and ext-values keep their order', () => {
    const text = `</3/0>;obs;a=1;b="x";a=2;title*=UTF-8'en'%E2%82%AC%20rates`;
    const links = parseLinkFormat(text);
    assert.deepEqual(links[0]!.params, [
      { name: 'obs', value: none },
      { name: 'a', value: t('1') },
      { name: 'b', value: q('x') },
      { name: 'a', value: t('2') },
      { name: 'title*', value: { kind: 'ext', charset: 'UTF-8', language: 'en', encoded: '%E2%82%AC%20rates' } },
    ] satisfies LinkParam[]);
    assert.equal(linkAttr(links[0]!, 'obs'), '');
    assert.equal(linkAttr(links[0]!, 'a'), '1');
    assert.deepEqual(linkAttrs(links[0]!, 'a'), [t('1'), t('2')]);
    assert.equal(linkAttr(links[0]!, 'title*'), '€ rates');
    assert.equal(serializeLinkFormat(links), text);
  });

  void it('quoted-string escapes (RFC 2616 §2.2 quoted-pair) and commas/semicolons inside quotes', () => {
    const links = parseLinkFormat('</a>;t="x\\"y\\\\z, w; v",</b>');
    assert.deepEqual(links, [link('/a', ['t', q('x"y\\z, w; v')]), link('/b')]);
    assert.equal(serializeLinkFormat(links), '</a>;t="x\\"y\\\\z, w; v",</b>');
  });

  void it('quoted-string keeps LWS (CRLF then SP/HT) and text around escapes as written (RFC 2616 §2.2)', () => {
    assert.deepEqual(parseLinkFormat('</a>;t="x\r\n y",</b>;t="\\"q\\" r\\\\",</c>;t=""'), [
      link('/a', ['t', q('x\r\n y')]),
      link('/b', ['t', q('"q" r\\')]),
      link('/c', ['t', q('')]),
    ]);
  });

  void it('the empty document is an empty link-value-list (RFC 6690 §2)', () => {
    assert.deepEqual(parseLinkFormat(''), []);
    assert.equal(serializeLinkFormat([]), '');
  });
});

void describe('RFC 6690 §2 malformed input: exact errors', () => {
  const cases: [string, string, number][] = [
    ['</a> ,</b>', 'expected ";", "," or end of input after a link-value, found " " (whitespace is not allowed outside quoted-strings) (RFC 6690 §2 link-value-list)', 4],
    ['</a>,', 'a "," must be followed by a link-value (RFC 6690 §2 link-value-list)', 5],
    [',</a>', 'expected "<" to start a link-value, found "," (RFC 6690 §2 link-value)', 0],
    ['</a', 'unterminated "<" URI-Reference (no ">") (RFC 6690 §2 link-value)', 0],
    ['<a b>', 'character " " is not allowed in a URI (RFC 3986 §2) (RFC 3986 §4.1 URI-Reference)', 2],
    ['</a%zz>', 'malformed percent-encoding (RFC 3986 §2.1) (RFC 3986 §4.1 URI-Reference)', 3],
    ['<1a:b>', 'invalid scheme, or ":" in the first segment of a relative path (RFC 3986 §3.1, §4.2) (RFC 3986 §4.1 URI-Reference)', 3],
    ['<http://[::1>', 'unterminated IP-literal (RFC 3986 §3.2.2) (RFC 3986 §4.1 URI-Reference)', 8],
    ['</a>;', 'expected a parameter name, found end of input (RFC 5987 §3.2.1 parmname)', 5],
    ['</a>;;b', 'expected a parameter name, found ";" (RFC 5987 §3.2.1 parmname)', 5],
    ['</a>;x=', 'expected a ptoken or quoted-string after "=", found end of input (RFC 6690 §2 ptoken)', 7],
    ['</a>;x=a"b', 'expected ";", "," or end of input after a link-value, found "\\"" (RFC 6690 §2 link-value-list)', 8],
    ['</a>;x="abc', 'unterminated quoted-string (RFC 2616 §2.2 quoted-string)', 7],
    ['</a>;x="\u0001"', 'control character U+0001 in quoted-string (RFC 2616 §2.2 quoted-string)', 8],
    ['</a>;x="\\é"', 'quoted-pair must escape an US-ASCII CHAR (RFC 2616 §2.2 quoted-string)', 9],
    ["</a>;t*=UTF8", 'malformed ext-value (RFC 5987 §3.2.1 ext-value)', 12],
    ['</a>;t*x', 'expected "=" after ext-name-star t*, found "x" (RFC 6690 §2 link-extension)', 7],
    ['</a>x', 'expected ";", "," or end of input after a link-value, found "x" (RFC 6690 §2 link-value-list)', 4],
  ];
  for (const [input, detail, position] of cases) {
    void it(`rejects ${JSON.stringify(input)}`, () => {
      throwsLinkFormat(() => parseLinkFormat(input), `at position ${position}: ${detail}`, position);
    });
  }

  void it('limits: maxLength, maxLinks, maxParamsPerLink', () => {
    throwsLinkFormat(
      () => parseLinkFormat('</a>,</b>', { maxLength: 8 }),
      'at position 0: input of 9 characters exceeds maxLength 8 (limits)',
      0,
    );
    throwsLinkFormat(() => parseLinkFormat('</a>,</b>,</c>', { maxLinks: 2 }), 'at position 10: more than maxLinks 2 link-values (limits)', 10);
    assert.equal(parseLinkFormat('</a>,</b>', { maxLinks: 2 }).length, 2);
    throwsLinkFormat(() => parseLinkFormat('</a>;x;y;z', { maxParamsPerLink: 2 }), 'at position 9: more than maxParamsPerLink 2 link-params (limits)', 9);
    const big = Array.from({ length: 1025 }, (_, i) => `</${i}>`).join(',');
    assert.throws(() => parseLinkFormat(big), /more than maxLinks 1024 link-values/);
  });

  void it('serialization refuses what cannot be represented', () => {
    throwsLinkFormat(() => serializeLinkFormat([link('/a b')]), 'RFC 3986 §4.1 URI-Reference: link 0: target: character " " is not allowed in a URI (RFC 3986 §2) at index 2', undefined);
    throwsLinkFormat(() => serializeLinkFormat([link('/a', ['x', t('a b')])]), 'RFC 6690 §2 ptoken: link 0: "a b" is not a ptoken (quote it)', undefined);
    throwsLinkFormat(() => serializeLinkFormat([link('/a', ['x=y', none])]), 'RFC 5987 §3.2.1 parmname: link 0: invalid parameter name "x=y"', undefined);
  });
});

void describe('properties', () => {
  const segment = fc.stringMatching(/^[A-Za-z0-9\-._~!$&'()*+,;=:@%]{0,8}$/).map((s) => s.replace(/%/g, '%25'));
  const target = fc.oneof(
    fc.constant('/'),
    fc.array(segment, { maxLength: 4 }).map((segs) => '/p/' + segs.join('/')),
    fc.webUrl({ withQueryParameters: true, withFragments: true }),
  );
  const name = fc.stringMatching(/^[A-Za-z0-9!#$&+\-.^_`|~]{1,6}$/);
  const value: fc.Arbitrary<LinkParamValue> = fc.oneof(
    fc.constant<LinkParamValue>({ kind: 'none' }),
    fc.stringMatching(/^[A-Za-z0-9!#$%&'()*+\-./:<=>?@[\]^_`{|}~]{1,8}$/).map((value): LinkParamValue => ({ kind: 'ptoken', value })),
    fc.string({ unit: 'binary', maxLength: 10 }).map((value): LinkParamValue => ({ kind: 'quoted', value })),
  );
  const extParam = fc
    .tuple(name, fc.constantFrom('UTF-8', 'ISO-8859-1', 'utf-8'), fc.constantFrom('', 'en', 'de-CH'), fc.stringMatching(/^(?:[A-Za-z0-9!#$&+\-.^_`|~]|%[0-9A-F]{2}){0,6}$/))
    .map(([n, charset, language, encoded]): LinkParam => ({ name: n + '*', value: { kind: 'ext', charset, language, encoded } }));
  const param = fc.oneof(
    { weight: 5, arbitrary: fc.tuple(name, value).map(([n, v]): LinkParam => ({ name: n, value: v })) },
    { weight: 1, arbitrary: extParam },
  );
  const links = fc.array(
    fc.tuple(target, fc.array(param, { maxLength: 5 })).map(([tg, params]): Link => ({ target: tg, params })),
    { maxLength: 6 },
  );

  void it('serialize → parse is the identity', () => {
    fc.assert(
      fc.property(links, (ls) => {
        assert.deepEqual(parseLinkFormat(serializeLinkFormat(ls)), ls);
      }),
      { numRuns: 500 },
    );
  });

  void it('parse → serialize reproduces any accepted input', () => {
    fc.assert(
      fc.property(links, (ls) => {
        const text = serializeLinkFormat(ls);
        assert.equal(serializeLinkFormat(parseLinkFormat(text)), text);
      }),
    );
  });

  void it('random strings only ever throw LinkFormatError', () => {
    const alphabet = fc.constantFrom(...'<>/;,="\\*\'%a1 \t\r\n:[]é'.split(''));
    const inputs = fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.string({ unit: alphabet, maxLength: 60 }));
    fc.assert(
      fc.property(inputs, fc.boolean(), (s, allowWhitespace) => {
        try {
          parseLinkFormat(s, { allowWhitespace });
        } catch (e) {
          assert.ok(e instanceof LinkFormatError, String(e));
          assert.ok(e.position !== undefined && e.position >= 0 && e.position <= s.length);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
