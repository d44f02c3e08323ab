"""WhatsApp's own limits on changing a message once it went out.

* **Edit**: a text message of one's own, within 15 minutes of sending it (WhatsApp's help
  centre, "How to edit messages"; WhatsApp Web's ``canEditMsg``, which wa-js's
  ``chat.editMessage`` asks, refuses it past that).
* **Delete for everyone**: one's own message within "about 2 days" of sending it (WhatsApp's
  help centre, "How to delete messages"; announced in 2022 as 2 days and 12 hours). wa-js's
  ``chat.deleteMessage`` does not check the time and quietly deletes for the account alone when
  WhatsApp will not revoke, so the gateway refuses past the shorter reading, 48 hours: a delete
  it accepts is one WhatsApp carries out for everyone.
"""

EDIT_WINDOW_S = 15 * 60
DELETE_WINDOW_S = 48 * 3600
