DROP TABLE suspension_notices;
DROP TABLE supplier_notices;
