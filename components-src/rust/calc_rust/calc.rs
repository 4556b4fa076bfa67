//! calc_rust: an arithmetic expression evaluator in Rust. Kind "eval" takes
//! an expression over 64-bit integers, with + - * / % (C semantics:
//! truncating division), unary minus and parentheses, and replies its value
//! in decimal. A malformed expression fails with 400 and says where; division
//! by zero and overflow fail with 422.
//!
//! The parser is a recursive-descent one over bytes, nested at most 64
//! levels deep, so hostile input cannot overflow the stack.
//! Built by scripts/components/rust.sh into testdata/calc_rust.wasm.

use tsubame::Failure;

const MAX_DEPTH: u32 = 64;

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: u32,
}

type Res = Result<i64, Failure>;

impl<'a> Parser<'a> {
    fn skip(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip();
        self.s.get(self.pos).copied()
    }

    fn bad(&self, what: &str) -> Failure {
        Failure::new(400, format!("calc: {} at byte {}", what, self.pos))
    }

    // expr := term (('+' | '-') term)*
    fn expr(&mut self) -> Res {
        let mut v = self.term()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let r = self.term()?;
            v = if op == b'+' { v.checked_add(r) } else { v.checked_sub(r) }
                .ok_or_else(|| Failure::new(422, "calc: overflow"))?;
        }
        Ok(v)
    }

    // term := unary (('*' | '/' | '%') unary)*
    fn term(&mut self) -> Res {
        let mut v = self.unary()?;
        while let Some(op @ (b'*' | b'/' | b'%')) = self.peek() {
            self.pos += 1;
            let r = self.unary()?;
            if op != b'*' && r == 0 {
                return Err(Failure::new(422, "calc: division by zero"));
            }
            v = match op {
                b'*' => v.checked_mul(r),
                b'/' => v.checked_div(r),
                _ => v.checked_rem(r),
            }
            .ok_or_else(|| Failure::new(422, "calc: overflow"))?;
        }
        Ok(v)
    }

    // unary := '-' unary | primary
    fn unary(&mut self) -> Res {
        if self.peek() == Some(b'-') {
            self.pos += 1;
            let v = self.nested(Self::unary)?;
            return v.checked_neg().ok_or_else(|| Failure::new(422, "calc: overflow"));
        }
        self.primary()
    }

    // primary := number | '(' expr ')'
    fn primary(&mut self) -> Res {
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let v = self.nested(Self::expr)?;
                if self.peek() != Some(b')') {
                    return Err(self.bad("expected ')'"));
                }
                self.pos += 1;
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() => {
                let mut v: i64 = 0;
                while let Some(&d) = self.s.get(self.pos).filter(|d| d.is_ascii_digit()) {
                    v = v
                        .checked_mul(10)
                        .and_then(|v| v.checked_add((d - b'0') as i64))
                        .ok_or_else(|| Failure::new(422, "calc: number too large"))?;
                    self.pos += 1;
                }
                Ok(v)
            }
            Some(_) => Err(self.bad("expected a number or '('")),
            None => Err(self.bad("unexpected end")),
        }
    }

    fn nested(&mut self, f: fn(&mut Self) -> Res) -> Res {
        if self.depth == MAX_DEPTH {
            return Err(self.bad("nested too deep"));
        }
        self.depth += 1;
        let v = f(self);
        self.depth -= 1;
        v
    }
}

fn eval(s: &[u8]) -> Res {
    let mut p = Parser { s, pos: 0, depth: 0 };
    let v = p.expr()?;
    if p.peek().is_some() {
        return Err(p.bad("unexpected input"));
    }
    Ok(v)
}

fn step() {
    let kind = tsubame::kind();
    if kind != "eval" {
        return tsubame::fail_unknown_kind(&kind);
    }
    match eval(&tsubame::input()) {
        Ok(v) => tsubame::reply(v.to_string().as_bytes()),
        Err(f) => tsubame::fail(f.code, &f.msg),
    }
}

tsubame::export_step!(step);
