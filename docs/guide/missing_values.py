r"""
.. _guide-missing:

Missing values (to come)
========================

*This chapter is a stub: it will be written when missing values land in every family, with*
``lvm.LatentImputer`` *(issue 14).*

The latent-variable view makes missing entries natural. The evidence of a partly observed row is
the marginal of its observed entries :math:`o`, for a linear decoder

.. math::
    p(y_o) = \mathcal N(y_o;\ \mu_o,\ W_o W_o^\top + \Psi_o),

and the posterior of :math:`x` given those entries, :math:`p(x \mid y_o)`, is what imputation
needs: each missing entry is filled with :math:`\mathbb E[y_m \mid y_o]` under the model, or with a
draw from :math:`p(y_m \mid y_o)` for multiple imputation. For the VAE the likelihood sums over the
observed entries only (the MIWAE bound; Mattei & Frellsen, 2019); for the Bayesian GPLVM each output
dimension uses the rows where it is observed.
"""
