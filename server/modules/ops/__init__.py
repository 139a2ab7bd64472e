"""Operations endpoints for admins: the SLO error-budget report."""
