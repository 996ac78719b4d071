"""Block Kit views by surface: messages (replies, announcements), modals, and the words for errors. Pure: no I/O, no Bolt."""
