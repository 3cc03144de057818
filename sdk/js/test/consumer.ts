// Compiled with `tsc --noEmit -p test` against the built declarations: the public API type-checks as
// an application would use it.
import { ApiError, ChatClient, HttpApi, MemoryStore } from '../dist/index.js';
import type { Ack, ClientEvent, InboxEvent, Login, Message, Presence, StateStore } from '../dist/index.js';

export async function example(url: string, email: string, password: string): Promise<Message> {
  const http = new HttpApi(url);
  const store: StateStore = new MemoryStore();
  const chat = new ChatClient({ url, credentials: (): Promise<Login> => http.login(email, password), store });
  const stop = chat.on((event: ClientEvent) => {
    if (event.kind === 'message') console.log(event.message.seq, event.message.content, event.source);
    else if (event.kind === 'sendFailed') console.log(event.cid, event.code);
    else if (event.kind === 'event') describe(event.event);
    else if (event.kind === 'typing') console.log(event.from, 'group' in event.conversation ? event.conversation.group : 'me');
    else if (event.kind === 'presence') event.users.forEach(show);
  });
  chat.watchPresence([2, 3]);
  await chat.start();
  (await http.presence(chat.login?.token ?? '', [...chat.watching])).forEach(show);
  const typed: boolean = chat.typing({ to: 2 });
  console.log(typed);
  const groups = await http.groups(chat.login?.token ?? '');
  const first = groups[0];
  const sent = first === undefined ? chat.send('hi', { to: 2 }) : chat.send('hi all', { group: first.group_id });
  try {
    const message = await sent.done;
    const ack: Ack = await chat.edit(message, 'hi, edited');
    chat.read(message.group === null ? { peer: message.to ?? chat.userId } : { group: message.group }, ack.id);
    await chat.recall(message);
    return message;
  } catch (err) {
    if (err instanceof ApiError) console.log(err.status, err.code);
    throw err;
  } finally {
    stop();
    chat.close();
  }
}

function show(presence: Presence): void {
  console.log(presence.user_id, presence.online ? 'online' : `last seen ${presence.last_seen ?? 'never'}`);
}

/** Each known event kind narrows to its own fields. */
export function describe(event: InboxEvent): string {
  switch (event.type) {
    case 'edit': return `${event.id} now reads ${event.content}`;
    case 'recall': return `${event.id} was recalled`;
    case 'read': return `${event.by} read up to ${event.up_to}`;
    case 'member': return `${event.user} ${event.action} group ${event.group}`;
    case 'group': return `group ${event.group} is ${event.name}, owned by ${event.owner}`;
  }
}
