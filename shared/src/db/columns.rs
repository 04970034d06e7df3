//! Columns read straight into domain types. A value the type refuses (a role the CHECK
//! constraint would not allow, an `auth0_sub` that is neither pending nor an Auth0 id) fails
//! the read with a conversion error instead of being guessed at.

use std::error::Error;

use tokio_postgres::types::{FromSql, Type};

use crate::domain::{Auth0Link, Auth0UserId, Role};

impl<'a> FromSql<'a> for Role {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Role::from_stored(<&str>::from_sql(ty, raw)?).map_err(Into::into)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

impl<'a> FromSql<'a> for Auth0Link {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Auth0Link::from_stored(<&str>::from_sql(ty, raw)?).map_err(Into::into)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

impl<'a> FromSql<'a> for Auth0UserId {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Auth0UserId::parse(<&str>::from_sql(ty, raw)?).map_err(Into::into)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}
