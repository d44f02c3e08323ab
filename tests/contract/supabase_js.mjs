// Scenarios run with the real supabase-js (the version package.json pins) against the local
// stack, as an app's developer would call it. Usage:
//
//   SUPABASE_URL=... SUPABASE_ANON_KEY=... node supabase_js.mjs <scenario> '<json params>'
//
// Each scenario prints one JSON document: what the client returned (data, error, status,
// count), for the Python test that started it to check.
import { Readable } from "node:stream";
import { createClient } from "@supabase/supabase-js";

const url = process.env.SUPABASE_URL;
const anonKey = process.env.SUPABASE_ANON_KEY;
const [scenario, rawParams] = process.argv.slice(2);
const params = JSON.parse(rawParams || "{}");
const BUCKET = "whatsapp-media";

function client() {
  return createClient(url, anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  });
}

async function signedIn() {
  const supabase = client();
  const { error } = await supabase.auth.signInWithPassword({
    email: params.email,
    password: params.password,
  });
  if (error) throw new Error(`sign-in failed: ${error.message}`);
  return supabase;
}

// A client answer as plain JSON: what the tests compare.
function answer({ data, error, status, count }) {
  return {
    data: data === undefined ? null : data,
    error: error ? plainError(error) : null,
    status: status ?? null,
    count: count ?? null,
  };
}

function plainError(error) {
  const out = { name: error.name, message: error.message };
  for (const key of ["code", "details", "hint", "status", "statusCode"]) {
    if (error[key] !== undefined) out[key] = error[key];
  }
  return out;
}

// The first page of ``rows()``, newest first by (at, id), and the page after it by keyset on
// that pair, as the web page pages.
async function pageAndNext(rows, at, id) {
  const newest = () => rows().order(at, { ascending: false }).order(id, { ascending: false });
  const first = answer(await newest().limit(2));
  const last = first.data[first.data.length - 1];
  const next = answer(
    await newest()
      .lte(at, last[at])
      .or(`${at}.lt.${last[at]},${id}.lt.${last[id]}`)
      .limit(2),
  );
  return [first, next];
}

async function bytesOf(blob) {
  return blob ? Buffer.from(await blob.arrayBuffer()).toString("base64") : null;
}

const scenarios = {
  // Sign in, read the user, refresh twice at once with the same refresh token (two tabs),
  // refresh again with what each got, read the user with each, sign out.
  async auth() {
    const first = client();
    const signIn = await first.auth.signInWithPassword({
      email: params.email,
      password: params.password,
    });
    const session = signIn.data.session;
    const user = await first.auth.getUser();
    const [a, b] = [client(), client()];
    const together = await Promise.all([
      a.auth.refreshSession({ refresh_token: session.refresh_token }),
      b.auth.refreshSession({ refresh_token: session.refresh_token }),
    ]);
    const next = await Promise.all(
      together.map((r, i) =>
        [a, b][i].auth.refreshSession({ refresh_token: r.data.session?.refresh_token }),
      ),
    );
    const users = await Promise.all([a, b].map((c) => c.auth.getUser()));
    const other = (await b.auth.getSession()).data.session.access_token;
    const signOut = await a.auth.signOut();
    // The other tab hears of it (auth-js tells its tabs); the token it held is dead too.
    const afterSignOut = await b.auth.getUser(other);
    return {
      signIn: answer(signIn),
      user: answer(user),
      together: together.map(answer),
      next: next.map(answer),
      users: users.map(answer),
      signOut: answer(signOut),
      afterSignOut: answer(afterSignOut),
    };
  },

  // Templates: insert, the operators, counts, single, update, upsert, delete.
  async templates() {
    const db = await signedIn();
    const t = () => db.from("whatsapp_templates");
    const out = {};
    out.insert = answer(
      await t()
        .insert([
          { name: "alpha", body: "Hi {{name}}" },
          { name: "beta", body: "Bye {{name}}" },
          { name: "gamma", body: "Hello there" },
        ])
        .select("id,name,body"),
    );
    out.in = answer(await t().select("name").in("name", ["alpha", "gamma"]).order("name"));
    out.ilike = answer(await t().select("name").ilike("body", "%{{NAME}}%").order("name"));
    out.or = answer(
      await t().select("name").or("name.eq.alpha,body.ilike.hello*").order("name", { ascending: false }),
    );
    out.is = answer(await t().select("name").is("body", null));
    out.isNot = answer(await t().select("name").not("updated_at", "is", null).order("name"));
    out.not = answer(await t().select("name").not("name", "in", "(alpha,beta)"));
    out.orders = answer(
      await t().select("name").order("body", { ascending: true }).order("name", { ascending: false }),
    );
    out.range = answer(await t().select("name").order("name").range(1, 2));
    out.count = answer(
      await t().select("name", { count: "exact" }).order("name").range(0, 0),
    );
    out.head = answer(await t().select("*", { count: "exact", head: true }).neq("name", "beta"));
    out.single = answer(await t().select("name,body").eq("name", "beta").single());
    out.singleNone = answer(await t().select("name").eq("name", "nobody").single());
    out.singleMany = answer(await t().select("name").single());
    out.maybeNone = answer(await t().select("name").eq("name", "nobody").maybeSingle());
    out.update = answer(
      await t().update({ body: "Bye now {{name}}" }).eq("name", "beta").select("name,body").single(),
    );
    out.upsert = answer(
      await t()
        .upsert({ name: "gamma", body: "Hello again" }, { onConflict: "user_id,name" })
        .select("name,body"),
    );
    out.delete = answer(await t().delete({ count: "exact" }).in("name", ["alpha", "beta"]));
    out.left = answer(await t().select("name,body").order("name"));
    out.unknownColumn = answer(await t().select("colour"));
    out.unknownTable = answer(await db.from("no_such_table").select("*"));
    out.intoView = answer(await db.from("whatsapp_report_daily").insert({ messages: 1 }));
    return out;
  },

  // Conversations: a page of the view newest first, the next page by keyset, and message
  // search with .textSearch (every type) under RLS.
  async conversations() {
    const db = await signedIn();
    const view = () =>
      db.from("whatsapp_conversations").select("chat_id,last_body,last_at,last_message_id,unread");
    const out = {};
    [out.first, out.next] = await pageAndNext(view, "last_at", "last_message_id");
    const search = (query, options) =>
      db.from("whatsapp_messages").select("body").textSearch("search", query, options).order("body");
    out.fts = answer(await search("pizza & quatro", { config: "simple" }));
    out.plain = answer(await search("pizza queijos", { type: "plain", config: "simple" }));
    out.phrase = answer(await search("quatro queijos", { type: "phrase", config: "simple" }));
    out.websearch = answer(await search('"pizza" -calabresa', { type: "websearch", config: "simple" }));
    out.noConfig = answer(await search("pizza"));
    out.other = answer(await search("segredo", { config: "simple" }));
    return out;
  },

  // One conversation's messages as the page reads them: newest first by (message_at, id),
  // the page before by keyset, and the reactions of those messages with .in().
  async chatMessages() {
    const db = await signedIn();
    const chat = () =>
      db
        .from("whatsapp_messages")
        .select("id,body,message_at,chat_id")
        .eq("chat_id", params.chat)
        .eq("whatsapp_session_id", params.session);
    const out = {};
    [out.first, out.older] = await pageAndNext(chat, "message_at", "id");
    const ids = [...out.first.data, ...out.older.data].map((m) => m.id);
    out.reactions = answer(
      await db
        .from("whatsapp_reactions")
        .select("id,message_id,emoji,from_me,phone,contact_lid")
        .in("message_id", ids)
        .limit(1000),
    );
    return out;
  },

  // Messages with their session embedded, and the session through the RPC users may call.
  async embedsAndRpc() {
    const db = await signedIn();
    const out = {};
    out.toOne = answer(
      await db
        .from("whatsapp_messages")
        .select("body,direction,whatsapp_sessions(session_id,status)")
        .eq("direction", "outbound"),
    );
    out.toMany = answer(
      await db.from("whatsapp_sessions").select("session_id,whatsapp_messages(body)"),
    );
    out.rpc = answer(await db.rpc("gateway_get_session", { p_session_name: params.session }));
    out.rpcOther = answer(await db.rpc("gateway_get_session", { p_session_name: "nobody" }));
    out.rpcRevoked = answer(await db.rpc("gateway_hosts"));
    out.rpcUnknown = answer(await db.rpc("no_such_function", { x: 1 }));
    out.rpcWrongArgs = answer(await db.rpc("gateway_get_session", { name: "x" }));
    return out;
  },

  // Storage: upload bytes, a Blob and a stream; download; list; info; exists; signed URLs;
  // move; copy; update; remove.
  async storage() {
    const db = await signedIn();
    const files = db.storage.from(BUCKET);
    const folder = `${params.userId}/outgoing`;
    const bytes = Buffer.from(params.jpeg, "base64");
    const out = {};
    out.uploadBytes = answer(
      await files.upload(`${folder}/bytes.jpg`, bytes, { contentType: "image/jpeg" }),
    );
    out.uploadBlob = answer(
      await files.upload(`${folder}/blob.jpg`, new Blob([bytes], { type: "image/jpeg" })),
    );
    out.uploadStream = answer(
      await files.upload(`${folder}/stream.jpg`, Readable.from([bytes.subarray(0, 100), bytes.subarray(100)]), {
        contentType: "image/jpeg",
      }),
    );
    for (const name of ["bytes", "blob", "stream"]) {
      const got = await files.download(`${folder}/${name}.jpg`);
      out[`download_${name}`] = { ...answer({ ...got, data: null }), bytes: await bytesOf(got.data) };
    }
    out.list = answer(await files.list(folder, { sortBy: { column: "name", order: "desc" } }));
    out.listRoot = answer(await files.list(params.userId));
    out.listSearch = answer(await files.list(folder, { search: "b" }));
    out.info = answer(await files.info(`${folder}/bytes.jpg`));
    out.exists = answer(await files.exists(`${folder}/blob.jpg`));
    out.existsNot = answer(await files.exists(`${folder}/nothing.jpg`));
    const signed = await files.createSignedUrl(`${folder}/bytes.jpg`, 60, { download: "photo.jpg" });
    out.signed = answer(signed);
    if (signed.data) {
      const fetched = await fetch(signed.data.signedUrl);
      out.signedFetch = {
        status: fetched.status,
        disposition: fetched.headers.get("content-disposition"),
        nosniff: fetched.headers.get("x-content-type-options"),
        size: (await fetched.arrayBuffer()).byteLength,
      };
    }
    out.signedMany = answer(
      await files.createSignedUrls([`${folder}/blob.jpg`, `${folder}/nothing.jpg`], 60),
    );
    out.move = answer(await files.move(`${folder}/stream.jpg`, `${folder}/moved.jpg`));
    out.moveOut = answer(await files.move(`${folder}/moved.jpg`, `${params.userId}/elsewhere.jpg`));
    out.copy = answer(await files.copy(`${folder}/moved.jpg`, `${folder}/copied.jpg`));
    out.update = answer(
      await files.update(`${folder}/copied.jpg`, Buffer.from("\xff\xd8 updated", "latin1"), {
        contentType: "image/jpeg",
      }),
    );
    const copied = await files.download(`${folder}/copied.jpg`);
    out.download_copied = { ...answer({ ...copied, data: null }), bytes: await bytesOf(copied.data) };
    out.remove = answer(
      await files.remove([`${folder}/bytes.jpg`, `${folder}/blob.jpg`, `${folder}/moved.jpg`, `${folder}/copied.jpg`]),
    );
    out.listAfter = answer(await files.list(folder));
    out.signedUpload = answer(await files.createSignedUploadUrl(`${folder}/later.jpg`));
    return out;
  },
};

const run = scenarios[scenario];
if (!run) {
  console.error(`unknown scenario ${scenario}`);
  process.exit(2);
}
run().then(
  (result) => {
    process.stdout.write(JSON.stringify(result));
  },
  (error) => {
    console.error(error?.stack || String(error));
    process.exit(1);
  },
);
