"""The Flask extensions, created unbound and attached in the app factory."""

from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from web.models import Base

db = SQLAlchemy(metadata=Base.metadata)
migrate = Migrate()
mail = Mail()
