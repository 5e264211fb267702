-- Licence and absence ids say their employee's region (cloud/regional_ids.py):
-- id = n * 4 + code.
ALTER TABLE employees.licences ALTER COLUMN id DROP DEFAULT;
SELECT setval('employees.licences_id_seq', COALESCE(max(id), 0) / 4 + 1, false)
FROM employees.licences;
ALTER TABLE employees.absences ALTER COLUMN id DROP DEFAULT;
SELECT setval('employees.absences_id_seq', COALESCE(max(id), 0) / 4 + 1, false)
FROM employees.absences;
