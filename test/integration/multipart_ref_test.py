"""Reference test of wisp's multipart/form-data parser: random bodies are
parsed by wisp (test/http/multipart_dump.c, fed whole and in random
slices) and by Python's email package, and the parts must agree: name,
filename, Content-Type and content, in order.

The generator mixes what makes a multipart parser slip: CR, LF and "--"
runs and proper prefixes of the delimiter inside content, NUL and
high bytes, quoted-pairs in names, transport padding, preamble and
epilogue, quoted boundaries with spaces and specials.

Run: python3 multipart_ref_test.py path/to/multipart_dump
"""
import email.policy
import random
import subprocess
import sys
from email.parser import BytesParser

DUMP = sys.argv[1]
BCHARS = ("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
          "'()+_,-./:=?")
rng = random.Random(20261207)
failures = 0
checks = 0


def check(cond, what):
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
        print("FAIL:", what, file=sys.stderr)


def gen_boundary():
    n = rng.randint(1, 70)
    b = "".join(rng.choice(BCHARS + " ") for _ in range(n))
    b = b.rstrip(" ") or "x"
    return b


def content_type(b):
    quoted = " " in b or any(c in b for c in "()<>@,;:\\\"/[]?=") \
        or rng.random() < 0.3
    val = '"%s"' % b if quoted else b
    extra = rng.choice(["", "; charset=utf-8", " ; foo=bar"])
    return "multipart/form-data%s; boundary=%s" % (extra, val)


def gen_content(b):
    delim = b"\r\n--" + b.encode()
    out = bytearray()
    want = rng.choice([0, 1, 5, 50, 500, 5000])
    while len(out) < want:
        k = rng.random()
        if k < 0.4:
            out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
        elif k < 0.7:
            out += rng.choice([b"\r", b"\n", b"\r\n", b"-", b"--", b"\r\n-",
                               b"\r\n--", b"\0", b"\xff"])
        else:
            # A proper prefix of the delimiter, then a byte that breaks it.
            cut = rng.randrange(1, len(delim))
            out += delim[:cut] + b"Q"
    # Nothing in the content may look like a delimiter line to either
    # parser: Python also ends lines at a bare CR or LF, so the boundary
    # must never start a "line" at all.
    bb = b"--" + b.encode()
    while True:
        i = out.find(bb)
        if i < 0:
            break
        out[i + 2:i + 3] = b"Q"
    return bytes(out)


def gen_name(strip=False):
    # ASCII only: Python's email package turns header bytes above 0x7f
    # into U+FFFD (a UTF-8 name is a row of multipart_test.c instead).
    # Python strips whitespace around a filename, wisp gives it as sent:
    # filenames here have none at the ends.
    alphabet = "abcXYZ019 _-.[];="
    s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
    if rng.random() < 0.2:
        s += '"q"'
    if strip:
        # get_filename also drops one more pair of enclosing quotes.
        s = s.strip()
        if s.startswith('"') and s.endswith('"'):
            s = "f" + s
    return s


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def gen_body():
    b = gen_boundary()
    parts = []
    body = bytearray()
    if rng.random() < 0.5:
        body += b"This is the preamble.\r\n-- not it\r\n"
    body += b"--" + b.encode()
    for i in range(rng.randint(1, 5)):
        name = gen_name()
        filename = gen_name(True) if rng.random() < 0.4 else None
        ctype = rng.choice([None, "image/jpeg", "text/plain; charset=utf-8",
                            "application/octet-stream"])
        content = gen_content(b)
        parts.append((name, filename, ctype, content))
        body += rng.choice([b"", b" ", b"\t ", b"  "]) + b"\r\n"
        cd = "Content-Disposition: form-data; name=" + quote(name)
        if filename is not None:
            cd += "; filename=" + quote(filename)
        body += cd.encode() + b"\r\n"
        if ctype:
            body += ("Content-Type: " + ctype).encode() + b"\r\n"
        body += b"\r\n" + content + b"\r\n--" + b.encode()
    body += b"--" + rng.choice([b"", b"\r\n", b"  \r\nepilogue\r\n"])
    return content_type(b), bytes(body), parts


def hx(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        v = v.encode("utf-8", "surrogateescape")
    return v.hex() if v else "="


def python_parts(ct, body):
    msg = BytesParser(policy=email.policy.compat32).parsebytes(
        b"Content-Type: " + ct.encode() + b"\r\n\r\n" + body)
    out = []
    for p in msg.get_payload():
        name = p.get_param("name", header="content-disposition")
        if isinstance(name, tuple):  # RFC 2231 form, not generated
            name = name[2]
        fn = p.get_filename()
        ctype = p.get("Content-Type")
        data = p.get_payload(decode=True)
        out.append("P %s %s %s %s" % (hx(name), hx(fn), hx(ctype), hx(data)))
    return out


def wisp_parts(ct, body, seed):
    r = subprocess.run([DUMP, ct, str(seed)], input=body,
                       stdout=subprocess.PIPE, timeout=60, check=True)
    lines = r.stdout.decode().splitlines()
    return lines[:-1], lines[-1]


for n in range(300):
    ct, body, parts = gen_body()
    ref = python_parts(ct, body)
    # The generator's own view must agree with Python's: a generator bug
    # must not pass for a parser bug.
    mine = ["P %s %s %s %s" % (hx(nm), hx(fn), hx(ty), hx(co))
            for nm, fn, ty, co in parts]
    check(ref == mine, "body %d: Python disagrees with the generator" % n)
    for seed in (0, n + 1):
        got, rc = wisp_parts(ct, body, seed)
        check(rc == "RC 0", "body %d seed %d: %s" % (n, seed, rc))
        check(got == ref, "body %d seed %d: parts differ\n wisp %s\n  ref %s"
              % (n, seed, got[:3], ref[:3]))
        if failures > 10:
            break

# A truncated body is an error for wisp (Python only records a defect).
ct, body, _ = gen_body()
got, rc = wisp_parts(ct, body[:body.rfind(b"--")], 0)
check(rc == "RC -4031", "truncated body: %s" % rc)

print("multipart_ref: %d checks, %d failed" % (checks, failures))
sys.exit(1 if failures else 0)
