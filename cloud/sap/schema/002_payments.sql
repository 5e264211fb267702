-- Payments and refunds (payment.recorded / payment.refunded from billing) join the
-- document queue: each is an FI-AR payment document in SAP, keyed by our 16-character
-- reference (AU-PAY-000000123), ``gross`` its amount, ``issue_date`` its posting date.
ALTER TABLE sap.documents DROP CONSTRAINT documents_kind_check;
ALTER TABLE sap.documents ADD CONSTRAINT documents_kind_check CHECK (kind IN
    ('invoice', 'credit_note', 'debit_note', 'cancellation', 'payment', 'refund'));
