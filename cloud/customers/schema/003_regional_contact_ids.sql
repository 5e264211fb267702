-- A contact's id says its account's region (cloud/regional_ids.py): id = n * 4 + code.
ALTER TABLE customers.contacts ALTER COLUMN id DROP DEFAULT;
SELECT setval('customers.contacts_id_seq', COALESCE(max(id), 0) / 4 + 1, false)
FROM customers.contacts;
