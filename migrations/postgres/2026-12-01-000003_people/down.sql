DROP TABLE role_mailboxes;
DROP TABLE people;
