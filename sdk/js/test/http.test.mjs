// The HTTP helpers against a real `im serve`: profiles, groups, conversations, presence and blocks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError, HttpApi } from '../dist/index.js';
import { ImServer, signup } from './support.mjs';

async function refused(call) {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof ApiError);
    return error.status;
  }
  assert.fail('the call was not refused');
}

test('the HTTP helpers: me, users, groups, conversations, presence and blocks', async () => {
  const server = await ImServer.start();
  try {
    const http = new HttpApi(server.url);
    const ann = await signup(http, 'ann');
    const ben = await signup(http, 'ben');

    assert.equal((await http.setNickname(ann.token, ' Annie ')).nickname, 'Annie');
    assert.equal((await http.me(ann.token)).email, 'ann@example.test');
    assert.deepEqual(await http.user(ben.token, ann.user_id), { user_id: ann.user_id, nickname: 'Annie' });
    assert.deepEqual((await http.users(ben.token, [ben.user_id, ann.user_id])).map((p) => p.user_id),
      [ann.user_id, ben.user_id]);
    assert.deepEqual(await http.lookup(ben.token, 'ANN@example.test'), { user_id: ann.user_id, nickname: 'Annie' });
    assert.equal(await refused(http.lookup(ben.token, 'nobody@example.test')), 404);

    const { group_id: group } = await http.createGroup(ann.token, 'team');
    await http.addMember(ann.token, group, ben.user_id);
    assert.equal((await http.renameGroup(ann.token, group, 'crew')).name, 'crew');
    assert.equal((await http.group(ben.token, group)).member_count, 2);
    assert.deepEqual((await http.groupReads(ben.token, group)).map((r) => r.up_to), [null, null]);
    assert.equal(await refused(http.removeMember(ann.token, group, ann.user_id)), 409);
    assert.equal((await http.handOver(ann.token, group, ben.user_id)).owner, ben.user_id);
    await http.removeMember(ann.token, group, ann.user_id);
    assert.equal(await refused(http.group(ann.token, group)), 403);

    const page = await http.conversations(ben.token, { limit: 1 });
    assert.equal(page.conversations[0].group, group);
    assert.equal(page.next, null);
    assert.equal(await refused(http.conversations(ben.token, { cursor: 'nonsense' })), 400);
    assert.deepEqual(await http.conversationMessages(ben.token, { group }), { messages: [], more: false });
    assert.deepEqual(await http.conversationMessages(ben.token, { peer: ann.user_id }, { limit: 5 }),
      { messages: [], more: false });

    assert.deepEqual(await http.presence(ann.token, [ben.user_id, ann.user_id]), [
      { user_id: ben.user_id, online: false, last_seen: null }, { user_id: ann.user_id, online: false, last_seen: null }]);

    await http.block(ann.token, ben.user_id);
    assert.deepEqual(await http.blocked(ann.token), [ben.user_id]);
    await http.unblock(ann.token, ben.user_id);
    assert.deepEqual(await http.blocked(ann.token), []);
  } finally {
    await server.kill();
  }
});
