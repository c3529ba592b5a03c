import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  CoapUriError,
  analyzeUriReference,
  formatCoapUri,
  isIPv4Address,
  parseCoapUri,
  pathToSegments,
  removeDotSegments,
  segmentsToPath,
  type CoapScheme,
  type CoapUriParts,
} from '../../../src/coap/uri.js';

function throwsCoapUri(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CoapUriError, `expected CoapUriError, got ${String(e)}`);
    assert.equal(e.message, message);
    return true;
  });
}

const parts = (p: Partial<CoapUriParts> & Pick<CoapUriParts, 'host'>): CoapUriParts => ({
  scheme: 'coap',
  port: 5683,
  uriPath: [],
  uriQuery: [],
  hostIsLiteral: false,
  ...p,
});

void describe('RFC 7252 §6.3 normalization and comparison', () => {
  const equivalent = [
    'coap://example.com:5683/~sensors/temp.xml',
    'coap://EXAMPLE.com/%7Esensors/temp.xml',
    'coap://EXAMPLE.com:/%7esensors/temp.xml',
  ];
  for (const uri of equivalent) {
    void it(`§6.3: ${uri} gives the same options and composes to the normal form`, () => {
      const p = parseCoapUri(uri);
      assert.deepEqual(p, parts({ host: 'example.com', uriPath: ['~sensors', 'temp.xml'] }));
      assert.equal(formatCoapUri(p), 'coap://example.com/~sensors/temp.xml');
    });
  }

  void it('§6.3: an empty path is equivalent to "/" (and composes to "/")', () => {
    assert.deepEqual(parseCoapUri('coap://example.com'), parseCoapUri('coap://example.com/'));
    assert.equal(formatCoapUri(parseCoapUri('coap://example.com')), 'coap://example.com/');
  });

  void it('§6.3: coaps default port 5684 is elided; other ports are kept', () => {
    assert.equal(formatCoapUri(parseCoapUri('coaps://h:5684/a')), 'coaps://h/a');
    assert.equal(formatCoapUri(parseCoapUri('coaps://h:5683/a')), 'coaps://h:5683/a');
  });
});

void describe('RFC 7252 §6.4 decomposition (examples of Appendix B)', () => {
  void it('§6.4 step 5: IP-literal host needs no Uri-Host; brackets removed, lowercased', () => {
    assert.deepEqual(parseCoapUri('coap://[2001:DB8::2:1]/'), parts({ host: '2001:db8::2:1', hostIsLiteral: true }));
  });

  void it('§6.4 step 5: reg-name is lowercased, then percent-decoded', () => {
    assert.deepEqual(parseCoapUri('coap://Example.NET/'), parts({ host: 'example.net' }));
    assert.deepEqual(parseCoapUri('coap://%41b/'), parts({ host: 'Ab' }));
    assert.equal(parseCoapUri('coap://192.0.2.1/').hostIsLiteral, true);
    assert.equal(parseCoapUri('coap://192.0.2.01/').hostIsLiteral, false);
  });

  void it('§6.4 step 8: /.well-known/core gives two Uri-Path options', () => {
    assert.deepEqual(parseCoapUri('coap://example.net/.well-known/core').uriPath, ['.well-known', 'core']);
  });

  void it('§6.4 step 8: percent-encoded UTF-8 path segment', () => {
    const p = parseCoapUri('coap://xn--18j4d.example/%E3%81%93%E3%82%93%E3%81%AB%E3%81%A1%E3%81%AF');
    assert.deepEqual(p, parts({ host: 'xn--18j4d.example', uriPath: ['こんにちは'] }));
    assert.equal(formatCoapUri(p), 'coap://xn--18j4d.example/%E3%81%93%E3%82%93%E3%81%AB%E3%81%A1%E3%81%AF');
  });

  void it('§6.4 steps 6, 8, 9: port, empty segments, encoded "/" "&" "?"', () => {
    const p = parseCoapUri('coap://198.51.100.1:61616//%2F//?%2F%2F&?%26');
    assert.deepEqual(
      p,
      parts({ host: '198.51.100.1', port: 61616, uriPath: ['', '/', '', ''], uriQuery: ['//', '?&'], hostIsLiteral: true }),
    );
    // §6.5 leaves "/" and "?" unencoded in queries, so the normal form differs from the input.
    assert.equal(formatCoapUri(p), 'coap://198.51.100.1:61616//%2F//?//&?%26');
  });

  void it('§6.4 step 2: dot segments are removed by reference resolution', () => {
    assert.deepEqual(parseCoapUri('coap://h/a/../b/./c').uriPath, ['b', 'c']);
    assert.equal(removeDotSegments('/a/b/c/./../../g'), '/a/g');
    assert.equal(removeDotSegments('mid/content=5/../6'), 'mid/6');
    assert.equal(removeDotSegments('/rd/AbC-_~'), '/rd/AbC-_~');
    assert.equal(removeDotSegments('/a.b/.c/..d'), '/a.b/.c/..d');
  });

  void it('RFC 3986 §3.2.2: an IPv4address is four dec-octets without leading zeros; anything else is a reg-name', () => {
    for (const literal of ['0.0.0.0', '1.2.3.4', '255.255.255.255', '10.0.100.9']) assert.equal(isIPv4Address(literal), true, literal);
    for (const name of ['', '1.2.3', '1.2.3.4.', '.1.2.3', '01.2.3.4', '1.2.3.256', '1234.1.1.1', '1..2.3', '1.2.3.4a', 'a.b.c.d', '1.2.3.-4', '١.2.3.4']) {
      assert.equal(isIPv4Address(name), false, name);
    }
    assert.equal(parseCoapUri('coap://1.2.3.4:7/x').hostIsLiteral, true);
    assert.equal(parseCoapUri('coap://1.2.3.04/x').hostIsLiteral, false);
  });

  void it('RFC 3986 §3.1: a scheme is a letter, then letters, digits, "+", "-" or ".", up to the first ":"', () => {
    const scheme = (s: string): string | undefined => {
      const a = analyzeUriReference(s);
      return a.ok ? a.ref.scheme : `error at ${a.index}`;
    };
    assert.equal(scheme('coap+tcp://h/x'), 'coap+tcp');
    assert.equal(scheme('a.b-c:rest'), 'a.b-c');
    assert.equal(scheme('a:b:c'), 'a');
    assert.equal(scheme('/a:b'), undefined);
    assert.equal(scheme('1a:b'), 'error at 2');
    assert.equal(scheme(':b'), 'error at 0');
  });

  void it('§6.4 step 3: scheme is case-insensitive; RFC 8323 TCP schemes have their default ports', () => {
    assert.equal(parseCoapUri('CoAPs://h').port, 5684);
    assert.equal(parseCoapUri('coap+tcp://h').port, 5683);
    assert.equal(parseCoapUri('coaps+tcp://h').scheme, 'coaps+tcp');
    assert.equal(parseCoapUri('coaps+tcp://h').port, 5684);
  });

  void it('§6.4 step 9: "?" with nothing after gives one empty Uri-Query', () => {
    assert.deepEqual(parseCoapUri('coap://h/?').uriQuery, ['']);
    assert.equal(formatCoapUri(parseCoapUri('coap://h/?')), 'coap://h/?');
    assert.deepEqual(parseCoapUri('coap://h/rd?ep=node1&lt=300&b=U').uriQuery, ['ep=node1', 'lt=300', 'b=U']);
  });
});

void describe('RFC 7252 §6.4 failures: exact errors', () => {
  const cases: [string, string][] = [
    ['/rd?ep=x', 'RFC 7252 §6.4 step 1: relative reference, not an absolute URI'],
    ['coap://h/a b', 'RFC 7252 §6.4 step 1: not a URI: at index 10: character " " is not allowed in a URI (RFC 3986 §2)'],
    ['coap://h/%4', 'RFC 7252 §6.4 step 1: not a URI: at index 9: malformed percent-encoding (RFC 3986 §2.1)'],
    ['coap://[::g]/', 'RFC 7252 §6.4 step 1: not a URI: at index 8: invalid IP-literal: neither IPv6address nor IPvFuture (RFC 3986 §3.2.2)'],
    ['http://h/', 'RFC 7252 §6.4 step 3: scheme "http" is not coap, coaps, coap+tcp or coaps+tcp'],
    ['coap://h/#frag', 'RFC 7252 §6.4 step 4: URI has a fragment component'],
    ['coap://h/#', 'RFC 7252 §6.4 step 4: URI has a fragment component'],
    ['coap://h/%FF', 'RFC 7252 §6.4 step 8: path segment "%FF" is not UTF-8'],
    ['coap://%FF/', 'RFC 7252 §6.4 step 5: host is not UTF-8 after percent-decoding'],
    ['coap://h:65536/', 'RFC 7252 §6.4 step 6: port 65536 is out of range 0-65535'],
    ['coap://h/%2e%2E', 'RFC 7252 §6.4 step 8: Uri-Path must not be "." or ".." (RFC 7252 §5.10.1)'],
    ['coap://h/?%C3', 'RFC 7252 §6.4 step 9: query argument "%C3" is not UTF-8'],
    ['coap:/x', 'RFC 7252 §6.1: a coap URI needs "//" and a host'],
    ['coap://u@h/', 'RFC 7252 §6.1: a coap URI has no userinfo'],
    ['coap:///x', 'RFC 7252 §6.1: empty host'],
  ];
  for (const [uri, message] of cases) {
    void it(`rejects ${uri}`, () => throwsCoapUri(() => parseCoapUri(uri), message));
  }
});

void describe('RFC 7252 §6.5 composition', () => {
  void it('§6.5 steps 6 and 8: what is percent-encoded (uppercase hex, UTF-8)', () => {
    assert.equal(
      formatCoapUri({ scheme: 'coap', host: 'h', uriPath: ['a b', 'x/y', "!$&'()*+,;=:@-._~", 'é?#'], uriQuery: ['a=b&c', 'd/e?f', '%'] }),
      "coap://h/a%20b/x%2Fy/!$&'()*+,;=:@-._~/%C3%A9%3F%23?a=b%26c&d/e?f&%25",
    );
  });

  void it('§6.5 step 2: non-ASCII host characters are percent-encoded; IPv6 gets brackets', () => {
    assert.equal(formatCoapUri({ scheme: 'coap', host: 'bücher.example' }), 'coap://b%C3%BCcher.example/');
    assert.equal(formatCoapUri({ scheme: 'coaps', host: '2001:db8::1', port: 5684 }), 'coaps://[2001:db8::1]/');
    assert.equal(formatCoapUri({ scheme: 'coap', host: '[2001:db8::1]', port: 61616 }), 'coap://[2001:db8::1]:61616/');
  });

  void it('§6.5 failures: invalid host, port, dot segments', () => {
    throwsCoapUri(
      () => formatCoapUri({ scheme: 'coap', host: 'a b' }),
      'RFC 7252 §6.5 step 2: host "a b" is not a valid reg-name, IP-literal or IPv4address',
    );
    throwsCoapUri(() => formatCoapUri({ scheme: 'coap', host: '' }), 'RFC 7252 §6.5 step 2: host "" is not a valid reg-name, IP-literal or IPv4address');
    throwsCoapUri(() => formatCoapUri({ scheme: 'coap', host: 'h', port: 70000 }), 'RFC 7252 §6.5 step 4: port 70000 is out of range 0-65535');
    throwsCoapUri(
      () => formatCoapUri({ scheme: 'coap', host: 'h', uriPath: ['..'] }),
      'RFC 7252 §6.5 step 6: Uri-Path must not be "." or ".." (RFC 7252 §5.10.1)',
    );
    throwsCoapUri(
      () => formatCoapUri({ scheme: 'http' as CoapScheme, host: 'h' }),
      'RFC 7252 §6.5 step 1: unknown scheme "http"',
    );
  });
});

void describe('path helpers', () => {
  void it('pathToSegments / segmentsToPath', () => {
    assert.deepEqual(pathToSegments('/a/b%20c'), ['a', 'b c']);
    assert.deepEqual(pathToSegments('/'), []);
    assert.deepEqual(pathToSegments(''), []);
    assert.deepEqual(pathToSegments('/a/'), ['a', '']);
    assert.deepEqual(pathToSegments('//x'), ['', 'x']);
    assert.equal(segmentsToPath(['a', 'b c']), '/a/b%20c');
    assert.equal(segmentsToPath([]), '/');
    assert.equal(segmentsToPath(['']), '/');
    throwsCoapUri(() => pathToSegments('a/b'), 'RFC 7252 §6.4 step 8: path must be empty or start with "/"');
    throwsCoapUri(() => pathToSegments('/a?b'), 'RFC 7252 §6.4 step 8: "/a?b" is not a path-abempty');
  });

  void it('analyzeUriReference splits the components of RFC 3986 §3', () => {
    const a = analyzeUriReference('coap://u@[::1]:99/p?q#f');
    assert.deepEqual(a, {
      ok: true,
      ref: {
        scheme: 'coap',
        authority: { userinfo: 'u', host: '[::1]', hostKind: 'ip-literal', port: '99' },
        path: '/p',
        query: 'q',
        fragment: 'f',
      },
    });
  });
});

void describe('properties', () => {
  const scheme = fc.constantFrom<CoapScheme>('coap', 'coaps', 'coap+tcp', 'coaps+tcp');
  const regName = fc
    .tuple(fc.stringMatching(/^[a-z0-9\-._~!$&'()*+,;=]{1,12}$/), fc.constantFrom('', 'é', 'ü.x'))
    .map(([a, b]) => a + b)
    .filter((h) => !/^(?:\d+\.){3}\d+$/.test(h));
  const ipv6 = fc.ipV6().map((a) => a.toLowerCase());
  const host = fc.oneof(regName.map((h) => ({ host: h, lit: false })), fc.ipV4().map((h) => ({ host: h, lit: true })), ipv6.map((h) => ({ host: h, lit: true })));
  const text = fc.string({ unit: 'grapheme', maxLength: 8 });
  const seg = text.filter((s) => s !== '.' && s !== '..');
  const input = fc.record({
    scheme,
    host,
    port: fc.integer({ min: 0, max: 65535 }),
    uriPath: fc.array(seg, { maxLength: 4 }),
    uriQuery: fc.array(text, { maxLength: 3 }),
  });

  void it('format → parse returns the options (§6.5 then §6.4)', () => {
    fc.assert(
      fc.property(input, ({ scheme: s, host: h, port, uriPath, uriQuery }) => {
        const uri = formatCoapUri({ scheme: s, host: h.host, port, uriPath, uriQuery });
        // A lone empty Uri-Path composes to "/", which decomposes to no Uri-Path at all.
        const expectedPath = uriPath.length === 1 && uriPath[0] === '' ? [] : uriPath;
        assert.deepEqual(parseCoapUri(uri), { scheme: s, host: h.host, port, uriPath: expectedPath, uriQuery, hostIsLiteral: h.lit });
      }),
      { numRuns: 500 },
    );
  });

  void it('parse → format → parse is stable', () => {
    fc.assert(
      fc.property(fc.webUrl({ withQueryParameters: true }), scheme, (url, s) => {
        const uri = url.replace(/^https?/, s).replace(/#.*$/, '');
        let p: CoapUriParts;
        try {
          p = parseCoapUri(uri);
        } catch (e) {
          assert.ok(e instanceof CoapUriError, String(e));
          return;
        }
        assert.deepEqual(parseCoapUri(formatCoapUri(p)), p);
      }),
    );
  });

  void it('random strings only ever throw CoapUriError', () => {
    const alphabet = fc.constantFrom(...'coap:/[]@?#&%2Fe1.:é '.split(''));
    const inputs = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: alphabet, maxLength: 40 }),
      fc.string({ unit: alphabet, maxLength: 30 }).map((s) => 'coap://' + s),
    );
    fc.assert(
      fc.property(inputs, (s) => {
        try {
          parseCoapUri(s);
        } catch (e) {
          assert.ok(e instanceof CoapUriError, String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
