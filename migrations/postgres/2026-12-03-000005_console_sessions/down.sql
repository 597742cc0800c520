DROP TABLE sign_in_links;
DROP TABLE sign_ins;
DROP TABLE sessions;
