"""The operator report (issue 19): per plan, who used up their Actions; per month, expired
Data Credits and revenue."""
