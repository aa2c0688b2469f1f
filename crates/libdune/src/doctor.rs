//! `dune doctor`: can this machine run Dune mode, and if not, why not. (In progress.)
