//! The value transforms: encrypt value arguments on the way to Redis, decrypt values in its
//! replies on the way back, and the error texts redcloak itself answers with.
//!
//! # Security
//! A reply that should hold a value but does not decrypt is never passed through: it becomes
//! an error reply ([`Undecryptable`]). Error texts never contain arguments or values; a key
//! name appears only in the reply to the client that named it, sanitised and truncated.

use bytes::{Bytes, BytesMut};
use std::fmt;

use redcloak_crypto::{Binding, DecryptError, KeyRing, ValueFormat};

use crate::resp::{self, Frame, Limits, ProtocolError};
use crate::table::{
    scan_options, Action, Bind, CommandSpec, MemberArgs, Reduce, Refusal, Rewrite, Shape,
    ValueArgs, INTERNAL_PREFIX, SCRATCH_PREFIX, SECRET_CONFIG,
};
use crate::words;

/// The hash-field slot a sealed `DUMP` payload is bound to (with the dumped key and database)
/// when the ring writes AES-GCM: `RESTORE` opens it only at that key and database.
pub const DUMP_SLOT: &[u8] = b"\0redcloak:dump";

/// Where the values of one request live, as its row's [`Bind`] says: the binding of the
/// value argument at `index`, or `None` for a value that is not stored (`PUBLISH`: always
/// Fernet).
fn value_binding<'a>(
    spec: &CommandSpec,
    args: &'a [Bytes],
    index: usize,
    db: u32,
) -> Option<Binding<'a>> {
    let arg = |i: usize| args.get(i).map_or(&[][..], |a| &a[..]);
    match spec.bind {
        Bind::Transit => None,
        Bind::Key(k) => Some(Binding::key(db, arg(k))),
        Bind::Moves => Some(Binding::key(db, arg(1))),
        Bind::Keys => Some(Binding::key(db, arg(index.saturating_sub(1)))),
        Bind::Fields => Some(Binding::field(db, arg(1), arg(index.saturating_sub(1)))),
    }
}

/// Encrypts one value at `binding` (the ring's write format), or as a Fernet token when it is
/// not stored, into the tail of `out` as a RESP bulk string. Returns where the ciphertext is.
fn write_sealed(
    ring: &KeyRing,
    plain: &[u8],
    binding: Option<&Binding<'_>>,
    out: &mut BytesMut,
) -> std::ops::Range<usize> {
    let len = match binding {
        Some(_) => ring.encrypted_len(plain.len()),
        None => ring.token_len(plain.len()),
    };
    resp::write_bulk_len(out, len);
    let start = out.len();
    out.resize(start + len, 0);
    match binding {
        Some(b) => ring.encrypt_value_into(plain, b, &mut out[start..]),
        None => ring.encrypt_into(plain, &mut out[start..]),
    }
    out.extend_from_slice(b"\r\n");
    start..start + len
}

/// One value argument's ciphertext, as [`write_sealed`] makes it.
fn sealed(ring: &KeyRing, plain: &[u8], binding: Option<&Binding<'_>>) -> Bytes {
    match binding {
        Some(b) => Bytes::from(ring.encrypt_value(plain, b)),
        None => Bytes::from(ring.encrypt(plain)),
    }
}

/// Whether redcloak carries a [`Bind::Moves`] command out itself while the ring writes
/// AES-GCM, encrypting what moves again for its new place (`LMOVE`, `RPOPLPUSH`: an emulation
/// exists), rather than refusing it.
pub fn rebinds(spec: &CommandSpec) -> bool {
    spec.bind == Bind::Moves && crate::emulate::is_emulated(spec.name.as_bytes())
}

/// What redcloak does with a command when the ring writes values in `format`: the row's
/// action, except that a command [`rebinds`] is emulated while the format is AES-GCM.
pub fn action(spec: &CommandSpec, format: ValueFormat) -> Action {
    if format == ValueFormat::AesGcm && rebinds(spec) {
        Action::Emulate
    } else {
        spec.action
    }
}

/// redcloak's refusal of a command that makes Redis move values to another location
/// ([`Bind::Moves`]) while the ring writes AES-GCM envelopes, which open only where they were
/// written (unless redcloak [`rebinds`] it).
pub fn move_refusal(spec: &CommandSpec, format: ValueFormat) -> Option<String> {
    (spec.bind == Bind::Moves && format == ValueFormat::AesGcm && !rebinds(spec)).then(|| {
        format!(
            "ERR redcloak: {} is refused while REDCLOAK_VALUE_FORMAT=aes-gcm: Redis would move \
             values to another key or database, and an aes-gcm value opens only at the key, \
             database and field it was written to. Read the values and write them at the new \
             place through redcloak, or use REDCLOAK_VALUE_FORMAT=fernet (docs/encryption.md)",
            spec.name
        )
    })
}

/// Opens a sealed `DUMP` payload for `RESTORE` to `key` in `db`.
fn unseal_payload(
    spec: &CommandSpec,
    ring: &KeyRing,
    sealed: &[u8],
    key: &[u8],
    db: u32,
) -> Result<Vec<u8>, String> {
    ring.decrypt_value(sealed, &Binding::field(db, key, DUMP_SLOT))
        .map(|opened| opened.plaintext.into_vec())
        .map_err(|e| match e {
            DecryptError::Binding => format!(
                "ERR redcloak: {} of a payload that DUMP returned for another key or database: \
                 with REDCLOAK_VALUE_FORMAT=aes-gcm the values inside are bound to the key and \
                 database they were dumped from; RESTORE it there",
                spec.name
            ),
            e => format!(
                "ERR redcloak: {} accepts only payloads that DUMP returned through redcloak ({}); \
                 a payload from elsewhere could store plaintext",
                spec.name,
                decrypt_reason(e)
            ),
        })
}

/// Writes `args` as a RESP array for Redis, each value argument (per the row's
/// [`ValueArgs`]) replaced by its ciphertext. Returns how many values were encrypted, or the
/// error text to answer the client with (nothing is written then).
pub fn encode_request(
    spec: &CommandSpec,
    args: &[Bytes],
    db: u32,
    ring: &KeyRing,
    out: &mut BytesMut,
) -> Result<usize, String> {
    encode_request_keeping(spec, args, db, ring, out, None)
}

/// A `DUMP` payload Redis itself rejects, with the error it gives any payload that is not
/// its own (`ERR DUMP payload version or checksum are wrong`): too short to hold an RDB
/// version and a checksum.
pub const REJECTED_PAYLOAD: &[u8] = b"";

/// Like [`encode_request`], for a command queued in a transaction that Redis runs: a
/// `RESTORE` whose payload redcloak cannot open (not made by DUMP through redcloak) is sent
/// with [`REJECTED_PAYLOAD`] in its place. Redis queues it, as it would queue the client's
/// payload, and fails it at EXEC with its own error after its own checks of the other
/// arguments (options, TTL, BUSYKEY) — the transaction runs as it would on Redis.
///
/// # Security
/// The client's payload never reaches Redis: it could hold plaintext values.
pub fn encode_queued_request(
    spec: &CommandSpec,
    args: &[Bytes],
    db: u32,
    ring: &KeyRing,
    out: &mut BytesMut,
    tokens: Option<&mut Vec<Bytes>>,
) -> Result<usize, String> {
    match encode_request_keeping(spec, args, db, ring, out, tokens) {
        Err(e) => match spec.values.resolve(args) {
            Ok(ValueArgs::Unseal(i)) if move_refusal(spec, ring.format()).is_none() => {
                resp::write_array_len(out, args.len());
                for (index, arg) in args.iter().enumerate() {
                    let arg = if index == i {
                        REJECTED_PAYLOAD
                    } else {
                        &arg[..]
                    };
                    resp::write_bulk(out, arg);
                }
                Ok(0)
            }
            _ => Err(e),
        },
        done => done,
    }
}

/// Like [`encode_request`], also handing back the ciphertext of each value argument (in
/// argument order) in `tokens`, for a cache that keeps what Redis stores.
pub fn encode_request_keeping(
    spec: &CommandSpec,
    args: &[Bytes],
    db: u32,
    ring: &KeyRing,
    out: &mut BytesMut,
    mut tokens: Option<&mut Vec<Bytes>>,
) -> Result<usize, String> {
    if let Some(refusal) = move_refusal(spec, ring.format()) {
        return Err(refusal);
    }
    if spec.members.any() || spec.rewrite != Rewrite::None {
        return encode_member_request(spec, args, db, ring, out);
    }
    let values = spec.values.resolve(args).map_err(str::to_owned)?;
    let mut unsealed = None;
    if let ValueArgs::Unseal(i) = values {
        let sealed = args.get(i).map_or(&[][..], |a| &a[..]);
        let key = args.get(1).map_or(&[][..], |a| &a[..]);
        unsealed = Some((i, unseal_payload(spec, ring, sealed, key, db)?));
    }
    resp::write_array_len(out, args.len());
    let mut encrypted = 0;
    for (index, arg) in args.iter().enumerate() {
        match &unsealed {
            Some((i, payload)) if *i == index => resp::write_bulk(out, payload),
            _ if values.is_value(index) => {
                // Encrypted in place, into the output buffer: no allocation per value.
                let at = value_binding(spec, args, index, db);
                let range = write_sealed(ring, arg, at.as_ref(), out);
                if let Some(tokens) = tokens.as_deref_mut() {
                    tokens.push(Bytes::copy_from_slice(&out[range]));
                }
                encrypted += 1;
            }
            _ => resp::write_bulk(out, arg),
        }
    }
    Ok(encrypted)
}

/// How one argument of a member command goes to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// As the client sent it.
    As,
    /// Encrypted as a value (at its row's binding).
    Value,
    /// Encrypted as a member under the primary key.
    Member,
    /// Replaced by its member ciphertext under every ring key, primary first (rotation).
    Candidates,
    /// Replaced by this command name (`SISMEMBER` sent as `SMISMEMBER` during a rotation).
    Renamed(&'static str),
    /// Left out (`MATCH pattern` of a scan, applied after decryption instead).
    Dropped,
}

/// Why `args` cannot be sent at all, when the row's option reading says so: Redis's own error
/// for arguments it would reject before knowing where the values or members are, or
/// redcloak's refusal (`… BYLEX`). `None` when the request can be encoded.
pub fn request_error(spec: &CommandSpec, args: &[Bytes]) -> Option<&'static str> {
    spec.values
        .resolve(args)
        .err()
        .or_else(|| spec.members.resolve(args).err())
}

/// Why [`encrypt_args`] would refuse `args` (nothing is encrypted then): a command that moves
/// values while the ring writes AES-GCM ([`move_refusal`]), or arguments whose values or
/// members cannot be found ([`request_error`]). A caller that acts on
/// the command's keys before encrypting it (scratch copies) checks this first.
pub fn send_error(spec: &CommandSpec, args: &[Bytes], ring: &KeyRing) -> Option<String> {
    move_refusal(spec, ring.format()).or_else(|| request_error(spec, args).map(str::to_owned))
}

/// Whether an error text is redcloak's own (a refusal), not one Redis would give.
pub fn is_refusal(text: &str) -> bool {
    text.starts_with("ERR redcloak")
}

/// How each argument of a member command goes to Redis, for a ring of `ring_keys` keys.
///
/// # Security
/// Every argument the row names as a member — and, for scans, every argument redcloak cannot
/// read — is encrypted; a `MATCH` pattern is dropped. An argument is sent as it is only when
/// the row says it is not data.
fn member_layout(
    spec: &CommandSpec,
    args: &[Bytes],
    ring_keys: usize,
) -> Result<Vec<Sent>, String> {
    let values = spec.values.resolve(args).map_err(str::to_owned)?;
    let members = spec.members.resolve(args).map_err(str::to_owned)?;
    if matches!(values, ValueArgs::Unseal(_)) || matches!(members, MemberArgs::Custom(..)) {
        return Err(format!(
            "ERR redcloak: {} cannot be sent (its row is inconsistent)",
            spec.name
        ));
    }
    let rotating = ring_keys > 1 && matches!(spec.rewrite, Rewrite::Every(_) | Rewrite::Via(..));
    let mut sent: Vec<Sent> = (0..args.len())
        .map(|i| {
            if members.is_member(i) {
                if rotating {
                    Sent::Candidates
                } else {
                    Sent::Member
                }
            } else if values.is_value(i) {
                Sent::Value
            } else {
                Sent::As
            }
        })
        .collect();
    match spec.rewrite {
        Rewrite::Via(name, _) if rotating => sent[0] = Sent::Renamed(name),
        Rewrite::As(name) => sent[0] = Sent::Renamed(name),
        Rewrite::Match { .. } => {
            let options = scan_options(args);
            for i in options.matches {
                sent[i] = Sent::Dropped;
            }
            if let Some(unread) = options.unread {
                for s in &mut sent[unread..] {
                    *s = Sent::Member;
                }
            }
        }
        _ => {}
    }
    Ok(sent)
}

/// [`encode_request`] for rows with members or a rewrite.
fn encode_member_request(
    spec: &CommandSpec,
    args: &[Bytes],
    db: u32,
    ring: &KeyRing,
    out: &mut BytesMut,
) -> Result<usize, String> {
    let (sent, encrypted) = member_request(spec, args, db, ring)?;
    resp::write_array_len(out, sent.len());
    for arg in &sent {
        resp::write_bulk(out, arg);
    }
    Ok(encrypted)
}

/// A member command as Redis receives it: members encrypted (under every ring key during a
/// rotation, for rows that look members up), renamed or rewritten as the row says. Returns
/// the arguments and how many of the client's arguments were encrypted.
fn member_request(
    spec: &CommandSpec,
    args: &[Bytes],
    db: u32,
    ring: &KeyRing,
) -> Result<(Vec<Bytes>, usize), String> {
    let layout = member_layout(spec, args, ring.len())?;
    let mut sent = Vec::with_capacity(args.len());
    let mut encrypted = 0;
    for (index, (arg, how)) in args.iter().zip(&layout).enumerate() {
        match how {
            Sent::As => sent.push(arg.clone()),
            Sent::Renamed(name) => sent.push(Bytes::from_static(name.as_bytes())),
            Sent::Dropped => {}
            Sent::Value => sent.push(sealed(
                ring,
                arg,
                value_binding(spec, args, index, db).as_ref(),
            )),
            Sent::Member => sent.push(Bytes::from(ring.encrypt_member(arg))),
            Sent::Candidates => {
                sent.extend(ring.member_candidates(arg).into_iter().map(Bytes::from))
            }
        }
        if matches!(how, Sent::Value | Sent::Member | Sent::Candidates) {
            encrypted += 1;
        }
    }
    Ok((sent, encrypted))
}

/// `args` with every value argument (per the row's [`ValueArgs`]) replaced by its ciphertext,
/// and every member by its member ciphertext (rewritten as the row says, see [`Rewrite`]):
/// the command exactly as Redis will receive it (for a journal that sends it later, or a
/// transaction or script redcloak runs itself; decode its reply with [`reply_plan`] for a
/// ring of the same size).
pub fn encrypt_args(
    spec: &CommandSpec,
    args: &[Bytes],
    db: u32,
    ring: &KeyRing,
) -> Result<Vec<Bytes>, String> {
    encrypt_args_at(spec, args, args, db, ring)
}

/// [`encrypt_args`] for a command sent under other key names than the ones its values belong
/// to (a transaction or script redcloak carries out on scratch copies of the keys): `sent` is
/// what Redis receives, `logical` the client's arguments, whose keys and fields the values are
/// bound to. Both have the same length.
pub fn encrypt_args_at(
    spec: &CommandSpec,
    sent: &[Bytes],
    logical: &[Bytes],
    db: u32,
    ring: &KeyRing,
) -> Result<Vec<Bytes>, String> {
    if let Some(refusal) = move_refusal(spec, ring.format()) {
        return Err(refusal);
    }
    if spec.members.any() || spec.rewrite != Rewrite::None {
        return Ok(member_request(spec, sent, db, ring)?.0);
    }
    let values = spec.values.resolve(sent).map_err(str::to_owned)?;
    let logical = if logical.len() == sent.len() {
        logical
    } else {
        sent
    };
    if let ValueArgs::Unseal(i) = values {
        // RESTORE on a scratch copy: the payload opened for the key the client named; one
        // redcloak did not seal is replaced by one Redis rejects with its own error (it
        // never reaches Redis: it could hold plaintext).
        let key = logical.get(1).map_or(&[][..], |k| &k[..]);
        let sealed = sent.get(i).map_or(&[][..], |a| &a[..]);
        let payload = unseal_payload(spec, ring, sealed, key, db)
            .map_or_else(|_| Bytes::from_static(REJECTED_PAYLOAD), Bytes::from);
        let mut out = sent.to_vec();
        if let Some(arg) = out.get_mut(i) {
            *arg = payload;
        }
        return Ok(out);
    }
    Ok(sent
        .iter()
        .enumerate()
        .map(|(i, arg)| {
            if values.is_value(i) {
                sealed(ring, arg, value_binding(spec, logical, i, db).as_ref())
            } else {
                arg.clone()
            }
        })
        .collect())
}

/// Encrypts one value for Redis at `at` (a value redcloak computed itself, e.g. an emulated
/// INCR's result): the one place such values are sealed.
pub fn seal_value(ring: &KeyRing, plain: &[u8], at: &Binding<'_>) -> Bytes {
    Bytes::from(ring.encrypt_value(plain, at))
}

/// Decrypts one stored value redcloak reads at `at` for its own computation (an emulated
/// command's input): the one place such values are opened.
pub fn open_value(
    ring: &KeyRing,
    stored: &[u8],
    at: &Binding<'_>,
) -> Result<Vec<u8>, DecryptError> {
    ring.decrypt_value(stored, at)
        .map(|opened| opened.plaintext.into_vec())
}

/// Decrypts one stored member (set, sorted set, geo): deterministic encryption.
pub fn open_member(ring: &KeyRing, stored: &[u8]) -> Result<Vec<u8>, DecryptError> {
    ring.decrypt_member(stored).map(|m| m.plaintext.into_vec())
}

/// Where the values of one reply are stored: the database and the arguments that name their
/// keys and hash fields, as the row's [`Bind`] says. AES-GCM envelopes in the reply open only
/// there; Fernet tokens ignore it.
///
/// # Security
/// `Debug` shows the database and how many names, never the key or field names.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Site {
    /// The logical database (`SELECT` index) the command ran in.
    pub db: u32,
    names: Names,
    /// The command was sent as another (`HVALS` as `HGETALL`, [`Rewrite::As`]): Redis's
    /// errors that name the sent command (`Can't execute 'hgetall'`) name the client's.
    renamed: Option<(&'static str, &'static str)>,
}

#[derive(Clone, PartialEq, Eq, Default)]
enum Names {
    /// Nothing is bound (a reply redcloak made, or a plan built without its request).
    #[default]
    None,
    /// Every value is the key's (`GET`, `LRANGE`, `XRANGE`), unless the reply names its key.
    Key(Bytes),
    /// Reply element `i` is key `i`'s (`MGET`).
    Keys(Vec<Bytes>),
    /// Hash field values of the key: element `i` is field `i`'s (`HGET`, `HMGET`), pairs name
    /// their fields (`HGETALL`).
    Fields(Bytes, Vec<Bytes>),
    /// Not stored: Fernet, unbound (`PUBLISH`).
    Transit,
}

impl Site {
    /// Where the values of the reply to `args` (row `spec`, run in database `db`) live.
    pub fn new(spec: &CommandSpec, args: &[Bytes], db: u32) -> Site {
        let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
        let names = match spec.bind {
            Bind::Key(k) => Names::Key(arg(k)),
            Bind::Moves => Names::Key(arg(1)),
            Bind::Keys => Names::Keys(args.get(1..).unwrap_or_default().to_vec()),
            Bind::Fields => Names::Fields(arg(1), args.get(2..).unwrap_or_default().to_vec()),
            Bind::Transit => Names::Transit,
        };
        let renamed = match spec.rewrite {
            Rewrite::As(sent) => Some((sent, spec.name)),
            _ => None,
        };
        Site { db, names, renamed }
    }

    /// Redis's error for the command as sent, in the words it would use for the client's.
    fn rename_error(&self, error: Frame) -> Frame {
        let (Some((sent, name)), Frame::Error(text)) = (self.renamed, &error) else {
            return error;
        };
        let sent = format!("'{}'", sent.to_ascii_lowercase());
        let text = String::from_utf8_lossy(text);
        if !text.contains(&sent) {
            return error;
        }
        let client = format!("'{}'", name.to_ascii_lowercase());
        Frame::Error(Bytes::from(text.replace(&sent, &client)))
    }

    /// The place values are read from at the top of the reply.
    fn top(&self) -> At<'_> {
        let (key, field) = match &self.names {
            Names::Key(k) => (&k[..], None),
            Names::Keys(keys) => (keys.first().map_or(&[][..], |k| &k[..]), None),
            Names::Fields(k, f) => (&k[..], f.first().map(|f| &f[..])),
            Names::None | Names::Transit => (&[][..], None),
        };
        At {
            site: self,
            key,
            field,
            top: true,
        }
    }
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = match &self.names {
            Names::None => "none".to_owned(),
            Names::Key(_) => "a key".to_owned(),
            Names::Keys(k) => format!("{} keys", k.len()),
            Names::Fields(_, fields) => format!("a key and {} fields", fields.len()),
            Names::Transit => "not stored".to_owned(),
        };
        f.debug_struct("Site")
            .field("db", &self.db)
            .field("names", &names)
            .finish()
    }
}

/// Where the value being decoded was read from.
#[derive(Clone, Copy)]
struct At<'a> {
    site: &'a Site,
    key: &'a [u8],
    field: Option<&'a [u8]>,
    /// At the top of the reply, where an array's element `i` is key or field argument `i`.
    top: bool,
}

impl<'a> At<'a> {
    fn binding(&self) -> Option<Binding<'a>> {
        match self.site.names {
            Names::Transit => None,
            _ => Some(Binding {
                db: self.site.db,
                key: self.key,
                field: self.field,
            }),
        }
    }

    /// Below the top: element indexes no longer name arguments.
    fn inner(self) -> At<'a> {
        At { top: false, ..self }
    }

    /// The value of a pair whose name is `name`: a hash field's or a stream entry field's.
    fn pair(self, name: &'a Frame) -> At<'a> {
        At {
            field: Some(frame_bytes(name)),
            ..self.inner()
        }
    }

    /// What is stored under the key `name` (`BLPOP`'s `[key, value]`, `XREAD`'s streams).
    fn keyed(self, name: &'a Frame) -> At<'a> {
        At {
            key: frame_bytes(name),
            field: None,
            ..self.inner()
        }
    }

    /// Element `i` of the top-level array: key `i` (`MGET`) or field `i` (`HMGET`).
    fn element(self, i: usize) -> At<'a> {
        if !self.top {
            return self;
        }
        match &self.site.names {
            Names::Keys(keys) => At {
                key: keys.get(i).map_or(&[][..], |k| &k[..]),
                ..self.inner()
            },
            Names::Fields(_, fields) => At {
                field: Some(fields.get(i).map_or(&[][..], |f| &f[..])),
                ..self.inner()
            },
            _ => self.inner(),
        }
    }
}

/// The bytes of a bulk or simple string (a key or field name in a reply); empty otherwise.
fn frame_bytes(frame: &Frame) -> &[u8] {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) => b,
        _ => &[],
    }
}

/// How to decode one upstream reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// By this shape, with nothing bound (a shape without values, or a reply redcloak made).
    Shape(&'static Shape),
    /// By this shape, each value opened where it is stored.
    At(&'static Shape, Site),
    /// The reply to a member command redcloak rewrote ([`Rewrite`]): reduced, decoded, then
    /// filtered.
    Members(MemberReply),
    /// An `EXEC` reply: one element per queued command, in order.
    Exec(Vec<Queued>),
}

impl Plan {
    /// How the command's element of `EXEC`'s reply is decoded when it is queued in `MULTI`.
    pub fn into_queued(self) -> Queued {
        match self {
            Plan::Shape(shape) => Queued::Shape(shape),
            Plan::At(shape, site) => Queued::At(shape, site),
            Plan::Members(m) => Queued::Members(m),
            // EXEC is never queued (Redis refuses nested MULTI/EXEC without queueing).
            Plan::Exec(_) => Queued::Shape(&Shape::Pass),
        }
    }
}

/// How the reply to a rewritten member command comes back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberReply {
    /// The shape of the client's reply (where its members are).
    pub shape: &'static Shape,
    /// Rotation: Redis answered once per candidate; fold each member's answers into one.
    pub reduce: Option<Reduction>,
    /// A scan's `MATCH`, applied to the decrypted page.
    pub filter: Option<Filter>,
}

/// Folding per-candidate answers into per-member answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reduction {
    /// How.
    pub reduce: Reduce,
    /// Candidates per member: the number of keys in the ring the request was encrypted with.
    pub group: usize,
    /// The client sent a single-member command (`SISMEMBER`): its reply is the one element.
    pub single: bool,
    /// For [`Reduce::Total`]: the distinct members named. A member stored under two keys
    /// (added again under the new key before `rewrap` merged the copies) is removed twice by
    /// Redis but counted once.
    pub limit: usize,
}

/// A scan's `MATCH pattern`, applied by redcloak after decryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The glob pattern (Redis's `stringmatchlen` rules).
    pub pattern: Bytes,
    /// The page holds `[member, score, …]` pairs (`ZSCAN`).
    pub pairs: bool,
}

/// The plan for decoding the reply to `args` (a command of row `spec`, run in database `db`)
/// when its request is encrypted with a ring of `ring_keys` keys. The request must be encoded
/// with a ring of the same size ([`encode_request`]), so that both agree on the rewrite.
pub fn reply_plan(spec: &CommandSpec, args: &[Bytes], db: u32, ring_keys: usize) -> Plan {
    let shape = spec.reply.shape(args);
    let rotating = ring_keys > 1;
    let reduce = |reduce, single, limit| {
        Plan::Members(MemberReply {
            shape,
            reduce: Some(Reduction {
                reduce,
                group: ring_keys,
                single,
                limit,
            }),
            filter: None,
        })
    };
    match spec.rewrite {
        Rewrite::Every(Reduce::Total) if rotating => {
            let distinct = match spec.members.resolve(args) {
                Ok(members) => args
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| members.is_member(*i))
                    .map(|(_, a)| a)
                    .collect::<std::collections::HashSet<_>>()
                    .len(),
                Err(_) => 0,
            };
            reduce(Reduce::Total, false, distinct)
        }
        Rewrite::Every(r) if rotating => reduce(r, false, 0),
        Rewrite::Via(_, r) if rotating => reduce(r, true, 0),
        Rewrite::Match { pairs } => match scan_options(args).pattern {
            Some(i) => Plan::Members(MemberReply {
                shape,
                reduce: None,
                filter: Some(Filter {
                    pattern: args[i].clone(),
                    pairs,
                }),
            }),
            None => Plan::Shape(shape),
        },
        _ => shape_plan(spec, args, db),
    }
}

/// The plan for a reply of the row's shape, its values opened where `args` (run in `db`)
/// says they are stored.
pub fn shape_plan(spec: &CommandSpec, args: &[Bytes], db: u32) -> Plan {
    match spec.reply.shape(args) {
        shape @ (Shape::Pass | Shape::Keys | Shape::Config) => Plan::Shape(shape),
        shape => Plan::At(shape, Site::new(spec, args, db)),
    }
}

/// A command queued in a transaction, for decoding `EXEC`'s reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    /// Sent to Redis: its element of Redis's reply is decoded by this shape.
    Shape(&'static Shape),
    /// Sent to Redis: decoded by this shape, values opened where they are stored.
    At(&'static Shape, Site),
    /// A rewritten member command: its element is decoded like [`Plan::Members`].
    Members(MemberReply),
    /// Answered by redcloak (`ECHO`, `PING message` inside `MULTI`): this element is inserted
    /// at its place in the reply (Redis never saw the command).
    Local(Frame),
}

impl Undecryptable {
    /// A value read from Redis that did not open; a HyperLogLog (which Redis stores as a
    /// string) is named as one.
    pub fn value(stored: &[u8], error: DecryptError) -> Undecryptable {
        let what = if stored.starts_with(HLL_MAGIC) {
            Stored::HyperLogLog
        } else {
            Stored::Value
        };
        Undecryptable {
            index: None,
            error,
            what,
        }
    }

    /// A set, sorted-set or geo member read from Redis that did not open.
    pub fn member(error: DecryptError) -> Undecryptable {
        Undecryptable {
            index: None,
            error,
            what: Stored::Member,
        }
    }
}

/// What a stored thing that does not decrypt was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A value (string, hash field value, list element, stream field value).
    Value,
    /// A set, sorted-set or geo member.
    Member,
    /// A HyperLogLog (raw `PFADD` data): never returned raw.
    HyperLogLog,
}

/// A value in a reply that no key of the ring opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undecryptable {
    /// For a [`Shape::PerKey`] reply (`MGET`), which key's value failed.
    pub index: Option<usize>,
    /// What was wrong with it.
    pub error: DecryptError,
    /// What it was.
    pub what: Stored,
}

/// Why a reply could not be transformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A value did not decrypt; the client gets [`undecryptable_message`] instead of the reply.
    #[error("a stored value could not be decrypted")]
    Undecryptable(Undecryptable),
    /// The reply bytes were not one valid RESP frame (a Redis or framing bug: close the session).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// Appends the client's view of one complete reply (`frame` holds exactly its bytes) to `out`,
/// decrypting the parts the plan names. Returns the number of values decrypted. On error
/// nothing is appended. Inside an `EXEC` reply, an element that does not decrypt becomes an
/// error element (the transaction ran; the other results are still delivered).
pub fn decode_reply(
    plan: &Plan,
    frame: Bytes,
    ring: &KeyRing,
    limits: &Limits,
    out: &mut BytesMut,
) -> Result<usize, ReplyError> {
    match plan {
        Plan::Shape(Shape::Pass) => {
            out.extend_from_slice(&frame);
            Ok(0)
        }
        // The common case, without building a frame.
        Plan::At(Shape::Value, site)
            if frame.first() == Some(&b'$') && !frame.starts_with(b"$-1") =>
        {
            let Frame::Bulk(data) = parse_whole(&frame, limits)? else {
                return Err(ProtocolError::Malformed("expected a bulk string").into());
            };
            let plain = open_at(ring, &data, &site.top())
                .map_err(|error| undecryptable_value(&data, None, error))?;
            resp::write_bulk(out, &plain);
            Ok(1)
        }
        Plan::Members(m) => {
            // Errors pass; anything else may need folding (a removal's count) or decoding.
            if matches!(frame.first(), Some(b'-' | b'!')) {
                out.extend_from_slice(&frame);
                return Ok(0);
            }
            let mut count = 0;
            let decoded = decode_members(m, parse_whole(&frame, limits)?, ring, &mut count)?;
            decoded.encode(out);
            Ok(count)
        }
        Plan::Shape(shape) => decode_at(shape, &Site::default(), frame, ring, limits, out),
        Plan::At(shape, site) => decode_at(shape, site, frame, ring, limits, out),
        Plan::Exec(queued) => {
            let items = match parse_whole(&frame, limits)? {
                Frame::Array(items) => items,
                // EXECABORT, nil (WATCH), …: nothing to decrypt.
                _ => {
                    out.extend_from_slice(&frame);
                    return Ok(0);
                }
            };
            let sent = queued
                .iter()
                .filter(|q| !matches!(q, Queued::Local(_)))
                .count();
            if items.len() != sent {
                return Err(
                    ProtocolError::Malformed("EXEC's reply does not match the queue").into(),
                );
            }
            let mut count = 0;
            let mut items = items.into_iter();
            let mut decoded = Vec::with_capacity(queued.len());
            for q in queued {
                let item = match q {
                    Queued::Local(frame) => {
                        decoded.push(frame.clone());
                        continue;
                    }
                    Queued::Shape(_) | Queued::At(..) | Queued::Members(_) => {
                        items.next().unwrap_or(Frame::NullBulk)
                    }
                };
                let none = Site::default();
                let result = match q {
                    Queued::Members(m) => decode_members(m, item, ring, &mut count),
                    Queued::Shape(shape) => apply(shape, item, ring, none.top(), &mut count),
                    Queued::At(shape, site) => {
                        apply(shape, site.rename_error(item), ring, site.top(), &mut count)
                    }
                    Queued::Local(_) => unreachable!("handled above"),
                };
                decoded.push(result.unwrap_or_else(|e| {
                    let msg = match e {
                        ReplyError::Undecryptable(u) => format!(
                            "ERR redcloak: {} in this transaction's reply cannot be decrypted: {}",
                            match u.what {
                                Stored::Value => "a stored value",
                                Stored::Member => "a stored member",
                                Stored::HyperLogLog => "a HyperLogLog",
                            },
                            problem_reason(&u)
                        ),
                        ReplyError::Protocol(_) => "ERR redcloak: malformed reply".to_owned(),
                    };
                    Frame::Error(Bytes::from(msg))
                }));
            }
            Frame::Array(decoded).encode(out);
            Ok(count)
        }
    }
}

/// [`decode_reply`] by a shape, values read at `site`.
fn decode_at(
    shape: &Shape,
    site: &Site,
    frame: Bytes,
    ring: &KeyRing,
    limits: &Limits,
    out: &mut BytesMut,
) -> Result<usize, ReplyError> {
    if site.renamed.is_some() && frame.first() == Some(&b'-') {
        site.rename_error(parse_whole(&frame, limits)?).encode(out);
        return Ok(0);
    }
    if !may_hold_values(&frame) {
        out.extend_from_slice(&frame);
        return Ok(0);
    }
    let mut count = 0;
    let decoded = apply(
        shape,
        parse_whole(&frame, limits)?,
        ring,
        site.top(),
        &mut count,
    )?;
    decoded.encode(out);
    Ok(count)
}

/// Whether a reply could hold a value at all (errors, integers, statuses and nils cannot).
fn may_hold_values(frame: &[u8]) -> bool {
    !matches!(
        frame.first(),
        Some(b'-' | b':' | b'+' | b'_' | b'#' | b',' | b'(' | b'!')
    ) && !frame.starts_with(b"$-1")
        && !frame.starts_with(b"*-1")
}

fn parse_whole(frame: &Bytes, limits: &Limits) -> Result<Frame, ProtocolError> {
    match Frame::parse(frame, limits)? {
        Some((parsed, used)) if used == frame.len() => Ok(parsed),
        _ => Err(ProtocolError::Malformed("reply is not exactly one frame")),
    }
}

/// The magic bytes Redis starts every HyperLogLog string with (`hyperloglog.c`).
const HLL_MAGIC: &[u8] = b"HYLL";

/// A value that did not decrypt; a HyperLogLog (which a value read such as `GET` can reach,
/// because Redis stores it as a string) is named as such.
fn undecryptable_value(data: &[u8], index: Option<usize>, error: DecryptError) -> ReplyError {
    ReplyError::Undecryptable(Undecryptable {
        index,
        ..Undecryptable::value(data, error)
    })
}

fn open(
    ring: &KeyRing,
    data: Bytes,
    index: Option<usize>,
    at: &At<'_>,
    count: &mut usize,
) -> Result<Frame, ReplyError> {
    let plain =
        open_at(ring, &data, at).map_err(|error| undecryptable_value(&data, index, error))?;
    *count += 1;
    Ok(Frame::Bulk(Bytes::from(plain)))
}

/// Opens one stored value where `at` says it is stored (a Fernet token anywhere; an AES-GCM
/// envelope only there).
fn open_at(ring: &KeyRing, data: &[u8], at: &At<'_>) -> Result<Vec<u8>, DecryptError> {
    match at.binding() {
        Some(b) => ring
            .decrypt_value(data, &b)
            .map(|opened| opened.plaintext.into_vec()),
        None => ring.decrypt(data),
    }
}

/// Decrypts one member. A member that does not decrypt is an error, never returned raw.
fn open_member_frame(ring: &KeyRing, data: &[u8], count: &mut usize) -> Result<Frame, ReplyError> {
    let opened = ring
        .decrypt_member(data)
        .map_err(|error| ReplyError::Undecryptable(Undecryptable::member(error)))?;
    *count += 1;
    Ok(Frame::Bulk(Bytes::copy_from_slice(&opened.plaintext)))
}

/// Decodes the reply to a rewritten member command: per-candidate answers folded into
/// per-member answers, members decrypted, then the scan page filtered by `MATCH`.
fn decode_members(
    m: &MemberReply,
    frame: Frame,
    ring: &KeyRing,
    count: &mut usize,
) -> Result<Frame, ReplyError> {
    let frame = match &m.reduce {
        Some(r) => reduce(r, frame)?,
        None => frame,
    };
    let none = Site::default();
    let frame = apply(m.shape, frame, ring, none.top(), count)?;
    Ok(match &m.filter {
        Some(f) => filter_page(f, frame),
        None => frame,
    })
}

fn is_nil(frame: &Frame) -> bool {
    matches!(frame, Frame::Null | Frame::NullBulk | Frame::NullArray)
}

/// Folds an array of per-candidate answers (`group` per member, primary key first) into one
/// answer per member. Anything but an array (an error) passes.
fn reduce(r: &Reduction, frame: Frame) -> Result<Frame, ReplyError> {
    if r.reduce == Reduce::Total {
        return Ok(match frame {
            Frame::Integer(n) => Frame::Integer(n.min(i64::try_from(r.limit).unwrap_or(i64::MAX))),
            other => other,
        });
    }
    let items = match frame {
        Frame::Array(items) => items,
        other => return Ok(other),
    };
    if r.group == 0 || items.len() % r.group != 0 {
        return Err(
            ProtocolError::Malformed("a lookup's reply does not match its candidates").into(),
        );
    }
    let mut folded = Vec::with_capacity(items.len() / r.group);
    let mut items = items.into_iter();
    while let Some(first) = items.next() {
        let rest: Vec<Frame> = items.by_ref().take(r.group - 1).collect();
        folded.push(match r.reduce {
            Reduce::Any => {
                let hit = std::iter::once(&first)
                    .chain(&rest)
                    .any(|f| matches!(f, Frame::Integer(1)));
                match first {
                    Frame::Integer(_) => Frame::Integer(i64::from(hit)),
                    other => other,
                }
            }
            Reduce::First | Reduce::Total => {
                if is_nil(&first) {
                    rest.into_iter().find(|f| !is_nil(f)).unwrap_or(first)
                } else {
                    first
                }
            }
        });
    }
    if r.single {
        return folded
            .into_iter()
            .next()
            .ok_or_else(|| ProtocolError::Malformed("a lookup's reply is empty").into());
    }
    Ok(Frame::Array(folded))
}

/// Keeps the members of a scan page (`[cursor, [member, …]]`) that match the pattern; the
/// cursor is Redis's.
fn filter_page(f: &Filter, frame: Frame) -> Frame {
    let Frame::Array(mut parts) = frame else {
        return frame;
    };
    if let Some(Frame::Array(page)) = parts.get_mut(1) {
        let matches = |m: &Frame| match m {
            Frame::Bulk(b) => words::stringmatch(&f.pattern, b),
            _ => true,
        };
        let items = std::mem::take(page);
        if f.pairs {
            let mut kept = Vec::with_capacity(items.len());
            let mut items = items.into_iter();
            while let Some(member) = items.next() {
                let score = items.next();
                if matches(&member) {
                    kept.push(member);
                    kept.extend(score);
                }
            }
            *page = kept;
        } else {
            *page = items.into_iter().filter(|m| matches(m)).collect();
        }
    }
    Frame::Array(parts)
}

/// Decrypts the parts of `frame` that `shape` names, each value where `at` (and the reply's
/// own key and field names) says it is stored. Nodes whose type does not fit the shape pass
/// unchanged.
fn apply(
    shape: &Shape,
    frame: Frame,
    ring: &KeyRing,
    at: At<'_>,
    count: &mut usize,
) -> Result<Frame, ReplyError> {
    // Attributes annotate the reply that follows them: decode that reply.
    let frame = match frame {
        Frame::Attribute { attributes, frame } => {
            return Ok(Frame::Attribute {
                attributes,
                frame: Box::new(apply(shape, *frame, ring, at, count)?),
            });
        }
        other => other,
    };
    Ok(match (shape, frame) {
        (Shape::Pass, f) => f,
        (Shape::Value | Shape::Values, Frame::Bulk(data)) => open(ring, data, None, &at, count)?,
        (Shape::Values, Frame::Array(items)) => {
            Frame::Array(elements(&Shape::Values, items, ring, at, count)?)
        }
        (Shape::Values, Frame::Set(items)) => {
            Frame::Set(elements(&Shape::Values, items, ring, at, count)?)
        }
        (Shape::PerKey, Frame::Array(items)) => Frame::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Frame::Bulk(data) => open(ring, data, Some(i), &at.element(i), count),
                    other => Ok(other),
                })
                .collect::<Result<_, _>>()?,
        ),
        (Shape::Tuple(shapes), Frame::Array(items)) => Frame::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    apply(
                        shapes.get(i).unwrap_or(&Shape::Pass),
                        item,
                        ring,
                        at.inner(),
                        count,
                    )
                })
                .collect::<Result<_, _>>()?,
        ),
        (Shape::Each(inner), Frame::Array(items)) => {
            Frame::Array(elements(inner, items, ring, at.inner(), count)?)
        }
        (Shape::Each(inner), Frame::Set(items)) => {
            Frame::Set(elements(inner, items, ring, at.inner(), count)?)
        }
        (Shape::Each(inner), Frame::Push(items)) => {
            Frame::Push(elements(inner, items, ring, at.inner(), count)?)
        }
        (Shape::Pairs(inner), frame) => pairs(inner, frame, ring, at, false, count)?,
        (Shape::KeyedPairs(inner), frame) => pairs(inner, frame, ring, at, true, count)?,
        (Shape::Keyed(inner), Frame::Array(mut items)) if items.len() == 2 => {
            let value = items.pop().unwrap_or(Frame::Null);
            let value = apply(inner, value, ring, at.keyed(&items[0]), count)?;
            items.push(value);
            Frame::Array(items)
        }
        (Shape::PairValues, frame) => match pairs(&Shape::Value, frame, ring, at, false, count)? {
            Frame::Map(pairs) => Frame::Array(pairs.into_iter().map(|(_, v)| v).collect()),
            Frame::Array(items) => Frame::Array(items.into_iter().skip(1).step_by(2).collect()),
            other => other,
        },
        (Shape::Fields(fields), Frame::Map(pairs)) => Frame::Map(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    let v = match field_shape(fields, &k) {
                        Some(s) => apply(s, v, ring, at.inner(), count)?,
                        None => v,
                    };
                    Ok((k, v))
                })
                .collect::<Result<_, ReplyError>>()?,
        ),
        (Shape::Fields(fields), Frame::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            let mut shape_for_next = None;
            for (i, item) in items.into_iter().enumerate() {
                if i % 2 == 0 {
                    shape_for_next = field_shape(fields, &item);
                    out.push(item);
                } else {
                    out.push(match shape_for_next.take() {
                        Some(s) => apply(s, item, ring, at.inner(), count)?,
                        None => item,
                    });
                }
            }
            Frame::Array(out)
        }
        (Shape::Member | Shape::Members, Frame::Bulk(data)) => {
            open_member_frame(ring, &data, count)?
        }
        (Shape::Members, Frame::Array(items)) => {
            Frame::Array(elements(&Shape::Members, items, ring, at, count)?)
        }
        (Shape::Members, Frame::Set(items)) => {
            Frame::Set(elements(&Shape::Members, items, ring, at, count)?)
        }
        (Shape::Scored, Frame::Array(items)) => Frame::Array(scored(items, ring, count)?),
        (Shape::Lead(inner), Frame::Bulk(data)) => {
            apply(inner, Frame::Bulk(data), ring, at, count)?
        }
        (Shape::Lead(inner), Frame::Array(items)) => {
            let mut items = items.into_iter();
            let mut out = Vec::with_capacity(items.len());
            if let Some(first) = items.next() {
                out.push(apply(inner, first, ring, at, count)?);
            }
            out.extend(items);
            Frame::Array(out)
        }
        (Shape::Seal, Frame::Bulk(data)) => Frame::Bulk(seal_payload(ring, &data, &at)),
        (Shape::Keys, Frame::Array(keys)) => Frame::Array(
            keys.into_iter()
                .filter(|k| {
                    !matches!(k, Frame::Bulk(name)
                        if name.starts_with(SCRATCH_PREFIX) || name.starts_with(INTERNAL_PREFIX))
                })
                .collect(),
        ),
        (Shape::Config, Frame::Map(pairs)) => Frame::Map(
            pairs
                .into_iter()
                .filter(|(name, _)| !is_secret_config(name))
                .collect(),
        ),
        (Shape::Config, Frame::Array(items)) => {
            let mut kept = Vec::with_capacity(items.len());
            let mut items = items.into_iter();
            while let Some(name) = items.next() {
                let value = items.next();
                if !is_secret_config(&name) {
                    kept.push(name);
                    kept.extend(value);
                }
            }
            Frame::Array(kept)
        }
        (_, other) => other,
    })
}

/// Seals a `DUMP` payload for the client: bound to the dumped key and database
/// ([`DUMP_SLOT`]) when the ring writes AES-GCM, so that `RESTORE` puts it back only there
/// (the values inside are bound to that key); a Fernet token otherwise.
fn seal_payload(ring: &KeyRing, payload: &[u8], at: &At<'_>) -> Bytes {
    match ring.format() {
        ValueFormat::AesGcm => {
            Bytes::from(ring.encrypt_value(payload, &Binding::field(at.site.db, at.key, DUMP_SLOT)))
        }
        _ => Bytes::from(ring.encrypt(payload)),
    }
}

/// Name/value pairs: a RESP3 map, an array of 2-element arrays, or a flat `[name, value, …]`
/// array; each value (this shape) is read at its pair's name: a key (`keyed`: `XREAD`), or a
/// hash field or stream entry field.
fn pairs(
    inner: &Shape,
    frame: Frame,
    ring: &KeyRing,
    at: At<'_>,
    keyed: bool,
    count: &mut usize,
) -> Result<Frame, ReplyError> {
    let value_at = |name: &Frame, value: Frame, count: &mut usize| {
        let at = if keyed { at.keyed(name) } else { at.pair(name) };
        apply(inner, value, ring, at, count)
    };
    Ok(match frame {
        Frame::Map(pairs) => Frame::Map(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    let v = value_at(&k, v, count)?;
                    Ok((k, v))
                })
                .collect::<Result<_, ReplyError>>()?,
        ),
        Frame::Array(items) => {
            let nested = matches!(items.first(), Some(Frame::Array(pair)) if pair.len() == 2);
            if nested {
                // [[name, value], …] (RESP3 HRANDFIELD, RESP2 XREAD)
                Frame::Array(
                    items
                        .into_iter()
                        .map(|item| match item {
                            Frame::Array(mut kv) if kv.len() == 2 => {
                                let v = kv.pop().unwrap_or(Frame::Null);
                                let v = value_at(&kv[0], v, count)?;
                                kv.push(v);
                                Ok(Frame::Array(kv))
                            }
                            other => Ok(other),
                        })
                        .collect::<Result<_, ReplyError>>()?,
                )
            } else {
                // [name, value, name, value, …]
                let mut out = Vec::with_capacity(items.len());
                let mut items = items.into_iter();
                while let Some(name) = items.next() {
                    let value = items
                        .next()
                        .map(|v| value_at(&name, v, count))
                        .transpose()?;
                    out.push(name);
                    out.extend(value);
                }
                Frame::Array(out)
            }
        }
        other => other,
    })
}

/// Member/score pairs: nested `[[member, score], …]` (RESP3) or flat `[member, score, …]`.
fn scored(items: Vec<Frame>, ring: &KeyRing, count: &mut usize) -> Result<Vec<Frame>, ReplyError> {
    let none = Site::default();
    let at = none.top();
    let nested = matches!(items.first(), Some(Frame::Array(_)));
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Frame::Array(mut pair) if nested => {
                if let Some(member) = pair.first_mut() {
                    let m = std::mem::replace(member, Frame::Null);
                    *member = apply(&Shape::Member, m, ring, at, count)?;
                }
                Ok(Frame::Array(pair))
            }
            item if !nested && i % 2 == 0 => apply(&Shape::Member, item, ring, at, count),
            item => Ok(item),
        })
        .collect()
}

/// Decodes each element by `shape`: element `i` of the top-level array read at key or field
/// argument `i` (`HMGET`), or all at the same place (`LRANGE`, and below the top).
fn elements(
    shape: &Shape,
    items: Vec<Frame>,
    ring: &KeyRing,
    at: At<'_>,
    count: &mut usize,
) -> Result<Vec<Frame>, ReplyError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| apply(shape, item, ring, at.element(i), count))
        .collect()
}

/// Whether a `CONFIG GET` parameter name is one of [`SECRET_CONFIG`].
fn is_secret_config(name: &Frame) -> bool {
    match name {
        Frame::Bulk(n) | Frame::Simple(n) => SECRET_CONFIG
            .iter()
            .any(|secret| n.eq_ignore_ascii_case(secret.as_bytes())),
        _ => false,
    }
}

fn field_shape<'a>(fields: &'a [(&'static str, Shape)], name: &Frame) -> Option<&'a Shape> {
    let name = match name {
        Frame::Bulk(b) | Frame::Simple(b) => b,
        _ => return None,
    };
    fields
        .iter()
        .find(|(n, _)| n.as_bytes() == &name[..])
        .map(|(_, s)| s)
}

/// What a pub/sub frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubSubFrame {
    /// A message; its payload was decrypted.
    Message,
    /// A (un)subscribe confirmation, with the number of subscriptions left.
    Confirmation {
        /// Subscriptions the connection still has after this one.
        remaining: i64,
    },
    /// Not a pub/sub frame (a normal reply).
    NotPubSub,
}

/// Decodes a pub/sub frame (a RESP3 push, or in RESP2 subscribed mode an array whose first
/// element names the kind): `message`/`smessage` payloads (third element) and `pmessage`
/// payloads (fourth) are decrypted; confirmations pass. Appends nothing for
/// [`PubSubFrame::NotPubSub`] or on error (a payload that does not decrypt: the caller drops
/// the message and says so in its log).
pub fn decode_pubsub(
    frame: &Bytes,
    ring: &KeyRing,
    limits: &Limits,
    out: &mut BytesMut,
) -> Result<PubSubFrame, ReplyError> {
    if !matches!(frame.first(), Some(b'*' | b'>')) {
        return Ok(PubSubFrame::NotPubSub);
    }
    let (mut items, push) = match parse_whole(frame, limits)? {
        Frame::Array(items) => (items, false),
        Frame::Push(items) => (items, true),
        _ => return Ok(PubSubFrame::NotPubSub),
    };
    let kind = match items.first() {
        Some(Frame::Bulk(k) | Frame::Simple(k)) => k.to_ascii_lowercase(),
        _ if push => {
            out.extend_from_slice(frame);
            return Ok(PubSubFrame::Message);
        }
        _ => return Ok(PubSubFrame::NotPubSub),
    };
    let payload_at = match &kind[..] {
        b"message" | b"smessage" => 2,
        b"pmessage" => 3,
        b"subscribe" | b"psubscribe" | b"ssubscribe" | b"unsubscribe" | b"punsubscribe"
        | b"sunsubscribe" => {
            let remaining = match items.get(2) {
                Some(Frame::Integer(n)) => *n,
                _ => 0,
            };
            out.extend_from_slice(frame);
            return Ok(PubSubFrame::Confirmation { remaining });
        }
        // Other pushes (RESP3) pass; in RESP2 anything else is a normal reply.
        _ if push => {
            out.extend_from_slice(frame);
            return Ok(PubSubFrame::Message);
        }
        _ => return Ok(PubSubFrame::NotPubSub),
    };
    if let Some(Frame::Bulk(data)) = items.get(payload_at).cloned() {
        let plain = ring
            .decrypt(&data)
            .map_err(|error| undecryptable_value(&data, None, error))?;
        items[payload_at] = Frame::Bulk(Bytes::from(plain));
    }
    if push {
        Frame::Push(items)
    } else {
        Frame::Array(items)
    }
    .encode(out);
    Ok(PubSubFrame::Message)
}

// === error texts ===

/// `-ERR` text for a command that is not in the table, in Redis 7.0's own words (clients and
/// test suites match on them): `unknown command 'name', with args beginning with: 'a' 'b' `.
/// As in Redis, each part ends at a NUL byte, the arguments are cut at 128 bytes in all, and
/// line breaks become spaces.
pub fn unknown_command_message(args: &[Bytes]) -> String {
    let name = args.first().map_or(&[][..], |n| words::c_str(n));
    let mut rest: Vec<u8> = Vec::new();
    for arg in args.iter().skip(1) {
        if rest.len() >= 128 {
            break;
        }
        let arg = words::c_str(arg);
        let room = 128 - rest.len();
        rest.push(b'\'');
        rest.extend_from_slice(&arg[..arg.len().min(room)]);
        rest.extend_from_slice(b"' ");
    }
    one_line(&format!(
        "ERR unknown command '{}', with args beginning with: {}",
        String::from_utf8_lossy(&name[..name.len().min(128)]),
        String::from_utf8_lossy(&rest)
    ))
}

/// `-ERR` text for a subcommand Redis does not know, in Redis's words:
/// `unknown subcommand 'x'. Try CONTAINER HELP.`
pub fn unknown_subcommand_message(args: &[Bytes]) -> String {
    let container = args.first().map_or(&[][..], |n| words::c_str(n));
    let sub = args.get(1).map_or(&[][..], |s| words::c_str(s));
    one_line(&format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)]),
        String::from_utf8_lossy(container).to_ascii_uppercase()
    ))
}

/// Line breaks become spaces (Redis sanitises error texts the same way).
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// `-ERR` text for a refused command; `name` is its display name (`CLIENT TRACKING`).
pub fn refusal_message(name: &str, refusal: &Refusal) -> String {
    let mut msg = format!("ERR redcloak: {name} is not supported: {}", refusal.reason);
    if let Some(alternative) = refusal.alternative {
        msg.push_str("; instead, ");
        msg.push_str(alternative);
    }
    msg
}

/// `-ERR` text for a wrong argument count, in Redis's own words (`client|setname` for a
/// subcommand).
pub fn arity_message(spec: &CommandSpec, parent: Option<&CommandSpec>) -> String {
    let name = match parent {
        Some(p) => format!("{}|{}", p.name, spec.name),
        None => spec.name.to_owned(),
    };
    format!(
        "ERR wrong number of arguments for '{}' command",
        name.to_ascii_lowercase()
    )
}

/// Why a value does not decrypt, for messages.
pub fn decrypt_reason(error: DecryptError) -> &'static str {
    match error {
        DecryptError::NotAToken => {
            "it is neither a Fernet token nor a redcloak envelope (it was written around redcloak, in plaintext or in another format)"
        }
        DecryptError::NoMatchingKey => {
            "no key in REDIS_ENCRYPTION_KEY opens it (written with another key, or tampered with)"
        }
        DecryptError::FromTheFuture => "its timestamp is more than 60 s ahead of this host's clock (check clock sync)",
        DecryptError::Binding => {
            "it was encrypted for another key, database or hash field (an aes-gcm value opens \
             only where it was written: it was copied or moved inside Redis, or swapped)"
        }
        DecryptError::Tampered => {
            "it was modified in Redis (it names a configured key but does not authenticate)"
        }
        _ => "it is not a value redcloak can read",
    }
}

/// Why a member does not decrypt, for messages.
fn member_reason(error: DecryptError) -> &'static str {
    match error {
        DecryptError::NotAToken => {
            "it is not a member ciphertext redcloak wrote (it was added around redcloak, in plaintext or in another format)"
        }
        DecryptError::NoMatchingKey => {
            "no key in REDIS_ENCRYPTION_KEY opens it (written with another key, or tampered with)"
        }
        DecryptError::Tampered => "it does not authenticate (tampered with, or truncated)",
        _ => "it is not a member redcloak can read",
    }
}

/// Why a stored thing does not decrypt, for messages.
fn problem_reason(problem: &Undecryptable) -> &'static str {
    match problem.what {
        Stored::Value => decrypt_reason(problem.error),
        Stored::Member => member_reason(problem.error),
        Stored::HyperLogLog => {
            "it is a HyperLogLog (PFADD data), whose raw bytes redcloak never returns; count it with PFCOUNT"
        }
    }
}

/// `-ERR` text for a value or member that does not decrypt. `keys` are the request's key
/// arguments (by the command's key positions); the key named is the one whose value failed
/// (`MGET`), the only key, or — when several keys could hold it — all of them.
pub fn undecryptable_message(name: &str, keys: &[&[u8]], problem: Undecryptable) -> String {
    let reason = problem_reason(&problem);
    let (thing, the) = match problem.what {
        Stored::Member => ("member", "a member"),
        Stored::Value | Stored::HyperLogLog => ("value", "the value"),
    };
    let named: Vec<&[u8]> = match problem.index {
        Some(i) => keys.get(i).copied().into_iter().collect(),
        None => keys.to_vec(),
    };
    match named.as_slice() {
        [] => format!("ERR redcloak: {name}: a stored {thing} cannot be decrypted: {reason}"),
        [key] => format!(
            "ERR redcloak: {name}: {the} stored at key '{}' cannot be decrypted: {reason}",
            printable(key)
        ),
        several => {
            let list: Vec<String> = several
                .iter()
                .take(8)
                .map(|k| format!("'{}'", printable(k)))
                .collect();
            format!(
                "ERR redcloak: {name}: a {thing} stored at one of the keys {} cannot be decrypted: {reason}",
                list.join(", ")
            )
        }
    }
}

/// A short printable rendering of client-supplied bytes for an error message (ASCII graphic
/// characters kept, everything else `?`, at most 64 characters).
pub fn printable(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let mut s: String = bytes
        .iter()
        .take(MAX)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    if bytes.len() > MAX {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{lookup, resolve, Action, Resolved};

    /// A fresh key ring per test: no key material lives in the source.
    fn ring() -> KeyRing {
        KeyRing::parse(&redcloak_crypto::generate_key()).unwrap()
    }

    fn args(parts: &[&[u8]]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
    }

    fn parse_request(bytes: &[u8]) -> Vec<Bytes> {
        let mut buf = BytesMut::from(bytes);
        let mut parser = resp::RequestParser::new(Limits::default());
        parser.parse(&mut buf).unwrap().unwrap().args
    }

    fn shape_of(name: &str, a: &[Bytes]) -> Plan {
        Plan::Shape(lookup(name.as_bytes()).unwrap().reply.shape(a))
    }

    fn decode(plan: &Plan, reply: Frame, ring: &KeyRing) -> Result<Frame, ReplyError> {
        let mut bytes = BytesMut::new();
        reply.encode(&mut bytes);
        let mut out = BytesMut::new();
        decode_reply(plan, bytes.freeze(), ring, &Limits::default(), &mut out)?;
        Ok(Frame::parse(&out.freeze(), &Limits::default())
            .unwrap()
            .unwrap()
            .0)
    }

    fn bulk(b: &[u8]) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(b))
    }

    fn token(ring: &KeyRing, b: &[u8]) -> Frame {
        Frame::Bulk(Bytes::from(ring.encrypt(b)))
    }

    #[test]
    fn set_encrypts_only_the_value() {
        let ring = ring();
        let mut out = BytesMut::new();
        let n = encode_request(
            lookup(b"SET").unwrap(),
            &args(&[b"SET", b"k", b"secret", b"EX", b"10"]),
            0,
            &ring,
            &mut out,
        )
        .unwrap();
        assert_eq!(n, 1);
        let sent = parse_request(&out);
        assert_eq!(
            (&sent[0][..], &sent[1][..], &sent[3][..], &sent[4][..]),
            (&b"SET"[..], &b"k"[..], &b"EX"[..], &b"10"[..])
        );
        assert!(
            sent[2].starts_with(b"gAAAAA"),
            "value must be a Fernet token"
        );
        assert_eq!(ring.decrypt(&sent[2]).unwrap(), b"secret");
    }

    #[test]
    fn pairs_and_tails_encrypt_values_and_never_keys_or_fields() {
        let ring = ring();
        for (cmd, a, values) in [
            ("MSET", args(&[b"MSET", b"a", b"1", b"b", b"2"]), vec![2, 4]),
            (
                "HSET",
                args(&[b"HSET", b"h", b"f1", b"1", b"f2", b"2"]),
                vec![3, 5],
            ),
            (
                "RPUSH",
                args(&[b"RPUSH", b"l", b"x", b"y", b"z"]),
                vec![2, 3, 4],
            ),
            (
                "XADD",
                args(&[
                    b"XADD", b"s", b"MAXLEN", b"~", b"100", b"*", b"f", b"v", b"g", b"w",
                ]),
                vec![7, 9],
            ),
            ("PUBLISH", args(&[b"PUBLISH", b"ch", b"hello"]), vec![2]),
        ] {
            let mut out = BytesMut::new();
            let n =
                encode_request(lookup(cmd.as_bytes()).unwrap(), &a, 0, &ring, &mut out).unwrap();
            assert_eq!(n, values.len(), "{cmd}");
            let sent = parse_request(&out);
            for (i, (orig, sent)) in a.iter().zip(&sent).enumerate() {
                if values.contains(&i) {
                    assert_eq!(ring.decrypt(sent).unwrap(), &orig[..], "{cmd} arg {i}");
                } else {
                    assert_eq!(orig, sent, "{cmd} arg {i} must pass unchanged");
                }
            }
        }
    }

    #[test]
    fn restore_accepts_only_sealed_payloads() {
        let ring = ring();
        let dump = lookup(b"DUMP").unwrap();
        let sealed = decode(
            &Plan::Shape(dump.reply.shape(&[])),
            bulk(b"\x00raw-rdb-payload"),
            &ring,
        )
        .unwrap();
        let Frame::Bulk(sealed) = sealed else {
            panic!()
        };
        assert_ne!(&sealed[..], b"\x00raw-rdb-payload");
        let restore = lookup(b"RESTORE").unwrap();
        let mut out = BytesMut::new();
        encode_request(
            restore,
            &[
                Bytes::from_static(b"RESTORE"),
                Bytes::from_static(b"k"),
                Bytes::from_static(b"0"),
                sealed,
            ],
            0,
            &ring,
            &mut out,
        )
        .unwrap();
        assert_eq!(&parse_request(&out)[3][..], b"\x00raw-rdb-payload");
        let err = encode_request(
            restore,
            &args(&[b"RESTORE", b"k", b"0", b"\x00foreign"]),
            0,
            &ring,
            &mut BytesMut::new(),
        )
        .unwrap_err();
        assert!(err.contains("redcloak") && err.contains("DUMP"), "{err}");
    }

    #[test]
    fn get_reply_is_decrypted_and_nil_passes() {
        let ring = ring();
        let plan = shape_of("GET", &[]);
        assert_eq!(
            decode(&plan, token(&ring, b"hello"), &ring).unwrap(),
            bulk(b"hello")
        );
        for passthrough in [
            &b"$-1\r\n"[..],
            b"+OK\r\n",
            b":3\r\n",
            b"-ERR x\r\n",
            b"_\r\n",
        ] {
            let mut out = BytesMut::new();
            decode_reply(
                &plan,
                Bytes::copy_from_slice(passthrough),
                &ring,
                &Limits::default(),
                &mut out,
            )
            .unwrap();
            assert_eq!(&out[..], passthrough);
        }
    }

    #[test]
    fn plaintext_in_redis_is_an_error_not_a_value() {
        let ring = ring();
        let mut out = BytesMut::new();
        let err = decode_reply(
            &shape_of("GET", &[]),
            Bytes::from_static(b"$5\r\nhello\r\n"),
            &ring,
            &Limits::default(),
            &mut out,
        )
        .unwrap_err();
        assert!(out.is_empty());
        let ReplyError::Undecryptable(problem) = err else {
            panic!("{err:?}")
        };
        assert_eq!(problem.error, DecryptError::NotAToken);
        let msg = undecryptable_message("GET", &[b"user:1"], problem);
        assert!(
            msg.contains("user:1") && msg.contains("redcloak") && !msg.contains("hello"),
            "{msg}"
        );
    }

    #[test]
    fn mget_decrypts_each_element_and_names_the_failing_key() {
        let ring = ring();
        let plan = shape_of("MGET", &[]);
        let reply = Frame::Array(vec![
            token(&ring, b"one"),
            Frame::NullBulk,
            token(&ring, b""),
        ]);
        assert_eq!(
            decode(&plan, reply, &ring).unwrap(),
            Frame::Array(vec![bulk(b"one"), Frame::NullBulk, bulk(b"")])
        );
        let other = self::ring();
        let err = decode(
            &plan,
            Frame::Array(vec![token(&ring, b"one"), token(&other, b"two")]),
            &ring,
        )
        .unwrap_err();
        let ReplyError::Undecryptable(problem) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            problem,
            Undecryptable {
                index: Some(1),
                error: DecryptError::NoMatchingKey,
                what: Stored::Value,
            }
        );
        let msg = undecryptable_message("MGET", &[b"a", b"b"], problem);
        assert!(msg.contains("'b'"), "{msg}");
    }

    #[test]
    fn hashes_in_resp2_and_resp3() {
        let ring = ring();
        let plan = shape_of("HGETALL", &[]);
        let flat = Frame::Array(vec![
            bulk(b"f1"),
            token(&ring, b"v1"),
            bulk(b"f2"),
            token(&ring, b"v2"),
        ]);
        assert_eq!(
            decode(&plan, flat, &ring).unwrap(),
            Frame::Array(vec![bulk(b"f1"), bulk(b"v1"), bulk(b"f2"), bulk(b"v2")])
        );
        let map = Frame::Map(vec![(bulk(b"f1"), token(&ring, b"v1"))]);
        assert_eq!(
            decode(&plan, map, &ring).unwrap(),
            Frame::Map(vec![(bulk(b"f1"), bulk(b"v1"))])
        );
        // HRANDFIELD … WITHVALUES in RESP3: [[field, value], …]
        let a = args(&[b"HRANDFIELD", b"h", b"2", b"WITHVALUES"]);
        let nested = Frame::Array(vec![Frame::Array(vec![bulk(b"f"), token(&ring, b"v")])]);
        assert_eq!(
            decode(&shape_of("HRANDFIELD", &a), nested, &ring).unwrap(),
            Frame::Array(vec![Frame::Array(vec![bulk(b"f"), bulk(b"v")])])
        );
        // Without WITHVALUES the fields pass untouched (they are not tokens).
        let fields = Frame::Array(vec![bulk(b"f1"), bulk(b"f2")]);
        assert_eq!(
            decode(
                &shape_of("HRANDFIELD", &args(&[b"HRANDFIELD", b"h", b"2"])),
                fields.clone(),
                &ring
            )
            .unwrap(),
            fields
        );
        // HSCAN: [cursor, [field, value, …]]
        let scan = Frame::Array(vec![
            bulk(b"0"),
            Frame::Array(vec![bulk(b"f"), token(&ring, b"v")]),
        ]);
        assert_eq!(
            decode(&shape_of("HSCAN", &[]), scan, &ring).unwrap(),
            Frame::Array(vec![bulk(b"0"), Frame::Array(vec![bulk(b"f"), bulk(b"v")])])
        );
    }

    #[test]
    fn streams_decrypt_field_values_only() {
        let ring = ring();
        let entry = |id: &[u8], v: &[u8]| {
            Frame::Array(vec![
                bulk(id),
                Frame::Array(vec![bulk(b"field"), token(&ring, v)]),
            ])
        };
        let plain = |id: &[u8], v: &[u8]| {
            Frame::Array(vec![bulk(id), Frame::Array(vec![bulk(b"field"), bulk(v)])])
        };
        let range = Frame::Array(vec![entry(b"1-0", b"a"), entry(b"2-0", b"b")]);
        assert_eq!(
            decode(&shape_of("XRANGE", &[]), range, &ring).unwrap(),
            Frame::Array(vec![plain(b"1-0", b"a"), plain(b"2-0", b"b")])
        );
        // XREAD RESP2: [[stream, entries]]; RESP3: {stream: entries}
        let resp2 = Frame::Array(vec![Frame::Array(vec![
            bulk(b"s"),
            Frame::Array(vec![entry(b"1-0", b"a")]),
        ])]);
        assert_eq!(
            decode(&shape_of("XREAD", &[]), resp2, &ring).unwrap(),
            Frame::Array(vec![Frame::Array(vec![
                bulk(b"s"),
                Frame::Array(vec![plain(b"1-0", b"a")])
            ])])
        );
        let resp3 = Frame::Map(vec![(bulk(b"s"), Frame::Array(vec![entry(b"1-0", b"a")]))]);
        assert_eq!(
            decode(&shape_of("XREAD", &[]), resp3, &ring).unwrap(),
            Frame::Map(vec![(bulk(b"s"), Frame::Array(vec![plain(b"1-0", b"a")]))])
        );
        // XINFO STREAM: named fields
        let info = Frame::Array(vec![
            bulk(b"length"),
            Frame::Integer(1),
            bulk(b"first-entry"),
            entry(b"1-0", b"a"),
            bulk(b"last-entry"),
            Frame::NullBulk,
        ]);
        let Resolved::Known { spec, .. } = resolve(&args(&[b"XINFO", b"STREAM", b"s"])) else {
            panic!()
        };
        let decoded = decode(&Plan::Shape(spec.reply.shape(&[])), info, &ring).unwrap();
        assert_eq!(
            decoded,
            Frame::Array(vec![
                bulk(b"length"),
                Frame::Integer(1),
                bulk(b"first-entry"),
                plain(b"1-0", b"a"),
                bulk(b"last-entry"),
                Frame::NullBulk
            ])
        );
    }

    #[test]
    fn exec_decodes_each_element_by_its_command() {
        let ring = ring();
        let other = self::ring();
        let plan = Plan::Exec(vec![
            Queued::Shape(&Shape::Pass),
            Queued::Shape(&Shape::Value),
            Queued::Local(bulk(b"echoed")),
            Queued::Shape(&Shape::Value),
            Queued::Shape(&Shape::Values),
        ]);
        let reply = Frame::Array(vec![
            Frame::Simple(Bytes::from_static(b"OK")),
            token(&ring, b"v"),
            token(&other, b"x"),
            Frame::Array(vec![token(&ring, b"a"), token(&ring, b"b")]),
        ]);
        let Frame::Array(items) = decode(&plan, reply, &ring).unwrap() else {
            panic!()
        };
        assert_eq!(items[0], Frame::Simple(Bytes::from_static(b"OK")));
        assert_eq!(items[1], bulk(b"v"));
        assert_eq!(items[2], bulk(b"echoed"), "a local answer keeps its place");
        assert!(
            matches!(&items[3], Frame::Error(e) if e.starts_with(b"ERR redcloak")),
            "{:?}",
            items[3]
        );
        assert_eq!(items[4], Frame::Array(vec![bulk(b"a"), bulk(b"b")]));
        assert!(
            decode(&plan, Frame::Array(vec![Frame::Integer(1)]), &ring).is_err(),
            "a reply that does not match the queue is malformed"
        );
        for aborted in [
            Frame::NullArray,
            Frame::Error(Bytes::from_static(b"EXECABORT x")),
        ] {
            assert_eq!(decode(&plan, aborted.clone(), &ring).unwrap(), aborted);
        }
    }

    #[test]
    fn pubsub_payloads_are_decrypted_in_resp2_and_resp3() {
        let ring = ring();
        let enc = |f: Frame| {
            let mut b = BytesMut::new();
            f.encode(&mut b);
            b.freeze()
        };
        let msg = Frame::Array(vec![bulk(b"message"), bulk(b"ch"), token(&ring, b"hi")]);
        let mut out = BytesMut::new();
        assert_eq!(
            decode_pubsub(&enc(msg), &ring, &Limits::default(), &mut out).unwrap(),
            PubSubFrame::Message
        );
        assert_eq!(
            Frame::parse(&out.freeze(), &Limits::default())
                .unwrap()
                .unwrap()
                .0,
            Frame::Array(vec![bulk(b"message"), bulk(b"ch"), bulk(b"hi")])
        );
        let pmsg = Frame::Push(vec![
            bulk(b"pmessage"),
            bulk(b"c*"),
            bulk(b"ch"),
            token(&ring, b"yo"),
        ]);
        let mut out = BytesMut::new();
        decode_pubsub(&enc(pmsg), &ring, &Limits::default(), &mut out).unwrap();
        assert_eq!(
            Frame::parse(&out.freeze(), &Limits::default())
                .unwrap()
                .unwrap()
                .0,
            Frame::Push(vec![
                bulk(b"pmessage"),
                bulk(b"c*"),
                bulk(b"ch"),
                bulk(b"yo")
            ])
        );
        let confirm = Frame::Array(vec![bulk(b"unsubscribe"), bulk(b"ch"), Frame::Integer(0)]);
        assert_eq!(
            decode_pubsub(
                &enc(confirm),
                &ring,
                &Limits::default(),
                &mut BytesMut::new()
            )
            .unwrap(),
            PubSubFrame::Confirmation { remaining: 0 }
        );
        let pong = Frame::Array(vec![bulk(b"pong"), bulk(b"")]);
        let mut out = BytesMut::new();
        assert_eq!(
            decode_pubsub(&enc(pong), &ring, &Limits::default(), &mut out).unwrap(),
            PubSubFrame::NotPubSub
        );
        assert!(out.is_empty());
        let planted = Frame::Array(vec![bulk(b"message"), bulk(b"ch"), bulk(b"plaintext")]);
        let mut out = BytesMut::new();
        assert!(decode_pubsub(&enc(planted), &ring, &Limits::default(), &mut out).is_err());
        assert!(
            out.is_empty(),
            "an undecryptable message is never passed on"
        );
    }

    #[test]
    fn messages_name_redcloak_and_never_arguments() {
        let msg = unknown_command_message(&args(&[b"FOO\r\nBAR", b"x\0y", b"z"]));
        assert_eq!(
            msg,
            "ERR unknown command 'FOO  BAR', with args beginning with: 'x' 'z' "
        );
        let long = unknown_command_message(&args(&[b"nope", &[b'a'; 200], b"b"]));
        assert_eq!(
            long.len(),
            "ERR unknown command 'nope', with args beginning with: ".len() + 131
        );
        assert_eq!(
            unknown_subcommand_message(&args(&[b"client", b"nope"])),
            "ERR unknown subcommand 'nope'. Try CLIENT HELP."
        );
        let several = undecryptable_message(
            "BLPOP",
            &[b"a", b"b"],
            Undecryptable {
                index: None,
                error: DecryptError::NotAToken,
                what: Stored::Value,
            },
        );
        assert!(several.contains("one of the keys 'a', 'b'"), "{several}");
        let monitor = lookup(b"MONITOR").unwrap();
        let Action::Refuse(refusal) = monitor.action else {
            panic!()
        };
        let msg = refusal_message("MONITOR", &refusal);
        assert!(msg.contains("MONITOR") && msg.contains("instead"), "{msg}");
        assert_eq!(
            arity_message(lookup(b"GET").unwrap(), None),
            "ERR wrong number of arguments for 'get' command"
        );
        let Resolved::Known { spec, parent } = resolve(&args(&[b"CLIENT", b"SETNAME"])) else {
            panic!()
        };
        assert_eq!(
            arity_message(spec, parent),
            "ERR wrong number of arguments for 'client|setname' command"
        );
        assert_eq!(printable(&[b'a'; 100]).chars().count(), 65);
    }
}
