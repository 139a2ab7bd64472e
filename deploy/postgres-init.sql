-- Run once by the postgres image on an empty volume: the two Paysheet roles and the database.
-- Change the passwords for anything but a local trial (and in docker-compose.yml too).
create role paysheet_owner login password 'owner-change-me' nosuperuser nocreatedb nocreaterole;
create role paysheet_app login password 'app-change-me' nosuperuser nobypassrls nocreatedb
  nocreaterole noinherit;
create database paysheet owner paysheet_owner;
